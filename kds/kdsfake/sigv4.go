package kdsfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// sigV4 is the parsed Authorization header of a SigV4-signed request.
type sigV4 struct {
	accessKey     string
	date          string // yyyymmdd of the credential scope
	region        string
	service       string
	signedHeaders []string
	signature     string
}

// parseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kinesis/aws4_request,
// SignedHeaders=host;x-amz-date, Signature=hex".
func parseAuthorization(h string) (sigV4, bool) {
	var sig sigV4
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256")
	if !ok {
		return sig, false
	}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return sig, false
			}
			sig.accessKey, sig.date, sig.region, sig.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			sig.signedHeaders = strings.Split(v, ";")
		case "Signature":
			sig.signature = v
		}
	}
	return sig, sig.accessKey != ""
}

// authenticate returns the account of the request: the access key id when
// it is a 12-digit number, otherwise the default account. With
// CheckSignatures it also verifies the SigV4 signature.
func (s *Server) authenticate(r *http.Request, body []byte) (string, *apiError) {
	sig, ok := parseAuthorization(r.Header.Get("Authorization"))
	if !s.cfg.CheckSignatures {
		if ok && isAccountID(sig.accessKey) {
			return sig.accessKey, nil
		}
		return s.cfg.DefaultAccount, nil
	}
	if r.Header.Get("Authorization") == "" {
		return "", newError(errMissingAuthentication, "Missing Authentication Token")
	}
	if !ok || sig.signature == "" || len(sig.signedHeaders) == 0 {
		return "", newError(errIncompleteSignature, "Authorization header requires Credential, SignedHeaders and Signature.")
	}
	secret, known := s.cfg.Credentials[sig.accessKey]
	if !known {
		return "", newError(errUnrecognizedClient, "The security token included in the request is invalid.")
	}
	want := signature(r, body, sig, secret)
	if !hmac.Equal([]byte(want), []byte(sig.signature)) {
		return "", newError(errInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	if isAccountID(sig.accessKey) {
		return sig.accessKey, nil
	}
	return s.cfg.DefaultAccount, nil
}

// signature computes the SigV4 signature of r as the client should have.
func signature(r *http.Request, body []byte, sig sigV4, secret string) string {
	var cr strings.Builder
	cr.WriteString(r.Method)
	cr.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	cr.WriteString(path)
	cr.WriteByte('\n')
	cr.WriteString(canonicalQuery(r.URL.Query()))
	cr.WriteByte('\n')
	for _, name := range sig.signedHeaders {
		cr.WriteString(name)
		cr.WriteByte(':')
		cr.WriteString(headerValue(r, name))
		cr.WriteByte('\n')
	}
	cr.WriteByte('\n')
	cr.WriteString(strings.Join(sig.signedHeaders, ";"))
	cr.WriteByte('\n')
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		sum := sha256.Sum256(body)
		payload = hex.EncodeToString(sum[:])
	}
	cr.WriteString(payload)

	crSum := sha256.Sum256([]byte(cr.String()))
	scope := sig.date + "/" + sig.region + "/" + sig.service + "/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + r.Header.Get("X-Amz-Date") + "\n" + scope + "\n" + hex.EncodeToString(crSum[:])

	key := hmacSHA256([]byte("AWS4"+secret), sig.date)
	key = hmacSHA256(key, sig.region)
	key = hmacSHA256(key, sig.service)
	key = hmacSHA256(key, "aws4_request")
	return hex.EncodeToString(hmacSHA256(key, sts))
}

// headerValue returns the canonical value of a signed header.
func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if r.ContentLength >= 0 {
			return strconv.FormatInt(r.ContentLength, 10)
		}
	}
	var vals []string
	for _, v := range r.Header.Values(name) {
		vals = append(vals, strings.Join(strings.Fields(v), " "))
	}
	return strings.Join(vals, ",")
}

// canonicalQuery returns the SigV4 canonical query string.
func canonicalQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	var parts []string
	for k, vs := range q {
		for _, v := range vs {
			parts = append(parts, sigEscape(k)+"="+sigEscape(v))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "&")
}

// sigEscape percent-encodes s as SigV4 requires (RFC 3986 unreserved kept).
func sigEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
