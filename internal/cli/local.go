package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shardflow/shardflow/kds"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

type localFlags struct {
	host    string
	port    int
	tlsPort int
	streams string
	quotas  bool
	dataDir string
}

// newLocalCmd runs kdsfake standalone: a local Kinesis for laptops and
// tests of other programs.
func newLocalCmd(e *env) *cobra.Command {
	var f localFlags
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run a local Kinesis Data Streams server (kdsfake) until Ctrl-C",
		Long: `Run shardflow's built-in Kinesis-compatible server.

It serves the Kinesis API (AWS JSON 1.1) over plain HTTP on --port and over
TLS with a self-signed certificate on --tls-port (HTTP/2, for enhanced fan-out
SubscribeToShard). It prints the endpoints and the environment variables an
AWS SDK or the AWS CLI needs. Any access key works; a 12-digit access key id
selects that account.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			streams, err := parseStreams(f.streams)
			if err != nil {
				return err
			}
			return e.local(cmd.Context(), f, streams)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.host, "host", "127.0.0.1", "address to listen on")
	fl.IntVar(&f.port, "port", 4567, "plain HTTP port (0: any free port)")
	fl.IntVar(&f.tlsPort, "tls-port", 4568, "TLS port, HTTP/2 for SubscribeToShard (0: any free port, -1: none)")
	fl.StringVar(&f.streams, "streams", "", "streams to create at start: name:shards,... (e.g. orders:4,clicks:2)")
	fl.BoolVar(&f.quotas, "quotas", false, "enforce the per-shard quotas of AWS (1 MB/s or 1000 records/s in; 5 reads/s and 2 MB/s out)")
	fl.StringVar(&f.dataDir, "data-dir", "", "keep streams and records in this directory across restarts")
	return cmd
}

type streamSpec struct {
	name   string
	shards int32
}

// parseStreams parses --streams name:shards,...
func parseStreams(s string) ([]streamSpec, error) {
	var out []streamSpec
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, n, ok := strings.Cut(part, ":")
		shards, err := strconv.Atoi(n)
		if !ok || name == "" || err != nil || shards < 1 || shards > 10000 {
			return nil, usage("--streams %q: want name:shards with 1 to 10000 shards, e.g. orders:4", part)
		}
		out = append(out, streamSpec{name, int32(shards)})
	}
	return out, nil
}

func (e *env) local(ctx context.Context, f localFlags, streams []streamSpec) error {
	log := e.logger()
	srv, err := kdsfake.New(kdsfake.Config{Quotas: f.quotas, DataDir: f.dataDir, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := srv.Close(); err != nil {
			log.Warn("closing the local Kinesis", "err", err)
		}
	}()
	url, err := srv.Listen(net.JoinHostPort(f.host, strconv.Itoa(f.port)))
	if err != nil {
		return err
	}
	var tlsURL, certFile string
	if f.tlsPort >= 0 {
		if tlsURL, err = srv.ListenTLS(net.JoinHostPort(f.host, strconv.Itoa(f.tlsPort))); err != nil {
			return err
		}
		dir := f.dataDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "shardflow-local-"); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
		}
		certFile = filepath.Join(dir, "kdsfake-cert.pem")
		if err := os.WriteFile(certFile, srv.CertPEM(), 0o644); err != nil {
			return err
		}
	}
	client, err := kds.NewClient(ctx, kds.AWSConfig{Region: "us-east-1", EndpointURL: url, AccessKeyID: "local", SecretKey: "local"})
	if err != nil {
		return err
	}
	for _, s := range streams {
		if err := createStream(ctx, client, s.name, s.shards); err != nil {
			return err
		}
	}

	fmt.Fprintf(e.stdout, "shardflow local: Kinesis Data Streams on %s", url)
	if tlsURL != "" {
		fmt.Fprintf(e.stdout, " and %s (TLS, HTTP/2)", tlsURL)
	}
	fmt.Fprintln(e.stdout)
	for _, s := range streams {
		fmt.Fprintf(e.stdout, "  stream %s: %d shards\n", s.name, s.shards)
	}
	fmt.Fprintf(e.stdout, "\nFor AWS SDKs and the AWS CLI:\n  export AWS_ENDPOINT_URL_KINESIS=%s AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n", url)
	if certFile != "" {
		fmt.Fprintf(e.stdout, "For enhanced fan-out over TLS, trust the certificate:\n  export AWS_CA_BUNDLE=%s   # with AWS_ENDPOINT_URL_KINESIS=%s\n", certFile, tlsURL)
	}
	fmt.Fprintf(e.stdout, "For shardflow: --source-option kinesis.endpointUrl=%s --source-option kinesis.region=us-east-1\nCtrl-C stops it.\n", url)

	select {
	case sig := <-e.signals:
		log.Info("stopping the local Kinesis", "signal", sig.String())
	case <-ctx.Done():
	}
	return nil
}
