// Package checkpointtest is the conformance suite for checkpoint.Store
// implementations: every store (fsstore, memstore, S3, DynamoDB) runs it
// from its tests, so they all behave the same to the engine.
//
//	func TestConformance(t *testing.T) {
//		checkpointtest.Run(t, func(t *testing.T) checkpoint.Store {
//			s, err := fsstore.New(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
package checkpointtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardflow/shardflow/checkpoint"
)

// Run runs the suite. Each subtest calls newStore once and expects a new,
// empty store, which it may lock; newStore registers any cleanup with
// t.Cleanup. The suite does not call t.Parallel.
func Run(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s checkpoint.Store)
	}{
		{"CreateExisting", testCreateExisting},
		{"CreateRace", testCreateRace},
		{"CreateRace30Writers", testCreateRace30},
		{"Purge", testPurge},
		{"DeleteMany", testDeleteMany},
		{"DeleteManyInvalid", testDeleteManyInvalid},
		{"Put", testPut},
		{"ReadMissing", testReadMissing},
		{"List", testList},
		{"ListMissing", testListMissing},
		{"Delete", testDelete},
		{"NestedNames", testNestedNames},
		{"Lock", testLock},
		{"LargeObject", testLargeObject},
		{"BinarySafe", testBinarySafe},
		{"Isolation", testIsolation},
		{"PutAtomic", testPutAtomic},
		{"InvalidNames", testInvalidNames},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if s.Location() == "" {
				t.Fatal("Location() is empty")
			}
			tt.fn(t, s)
		})
	}
}

func testCreateExisting(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	mustCreate(t, s, "offsets/0", []byte("first"))
	err := s.Create(ctx, "offsets/0", []byte("second"))
	if !errors.Is(err, checkpoint.ErrExist) {
		t.Fatalf("second Create(offsets/0) = %v, want an error wrapping ErrExist", err)
	}
	wantContent(t, s, "offsets/0", []byte("first"))
}

func testCreateRace(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	const writers = 8
	for round := range 5 {
		name := fmt.Sprintf("offsets/%d", round)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start
				errs[i] = s.Create(ctx, name, fmt.Appendf(nil, "writer %d", i))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("%s: writers %d and %d both created it", name, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, checkpoint.ErrExist):
				t.Fatalf("%s: writer %d: Create = %v, want nil or ErrExist", name, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("%s: no writer created it", name)
		}
		wantContent(t, s, name, fmt.Appendf(nil, "writer %d", winner))
	}
}

// testCreateRace30 is the Spark connector's DynamodbMetadataCommitterItSuite
// race: 30 writers of one batch, exactly one winner, whose bytes stay.
func testCreateRace30(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	const writers = 30
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			errs[i] = s.Create(ctx, "commits/7", fmt.Appendf(nil, `{"writer":%d}`, i))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both created commits/7", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, checkpoint.ErrExist):
			t.Fatalf("writer %d: Create = %v, want nil or ErrExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created commits/7")
	}
	wantContent(t, s, "commits/7", fmt.Appendf(nil, `{"writer":%d}`, winner))
	wantList(t, s, "commits", []string{"7"})
}

// fillLogs writes offsets/0..n-1, commits/0..n-1 and metadata, as a
// checkpoint after n batches holds them.
func fillLogs(t *testing.T, s checkpoint.Store, n int) {
	t.Helper()
	for i := range n {
		mustCreate(t, s, fmt.Sprintf("offsets/%d", i), []byte("o"))
		mustCreate(t, s, fmt.Sprintf("commits/%d", i), []byte("c"))
	}
	mustCreate(t, s, "metadata", []byte("m"))
}

// batchNames returns the names of batches lo..hi-1 as List returns them:
// sorted as strings.
func batchNames(lo, hi int) []string {
	var names []string
	for i := lo; i < hi; i++ {
		names = append(names, fmt.Sprint(i))
	}
	slices.Sort(names)
	return names
}

// testPurge does what the engine does after a commit: list a log and
// delete the entries older than the newest few, over more entries than
// one listing page of a small-page store.
func testPurge(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	const n, keep = 25, 5
	fillLogs(t, s, n)
	for _, dir := range []string{"commits", "offsets"} {
		names, err := s.List(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != n {
			t.Fatalf("List(%q) = %d names, want %d", dir, len(names), n)
		}
		for _, name := range names {
			var id int
			if _, err := fmt.Sscan(name, &id); err != nil {
				t.Fatalf("List(%q) gave %q", dir, name)
			}
			if id < n-keep {
				if err := s.Delete(ctx, dir+"/"+name); err != nil {
					t.Fatalf("Delete(%s/%s): %v", dir, name, err)
				}
			}
		}
	}
	want := batchNames(n-keep, n)
	wantList(t, s, "offsets", want)
	wantList(t, s, "commits", want)
	wantList(t, s, "", []string{"metadata"})
	if _, err := s.Read(ctx, "offsets/0"); !errors.Is(err, checkpoint.ErrNotExist) {
		t.Fatalf("Read(offsets/0) after purge = %v, want ErrNotExist", err)
	}
	// A purged name may be written again (a checkpoint recreated from scratch).
	mustCreate(t, s, "offsets/0", []byte("new"))
	wantContent(t, s, "offsets/0", []byte("new"))
}

// batchDeleter returns the store's checkpoint.BatchDeleter, and skips the
// test for a store without one.
func batchDeleter(t *testing.T, s checkpoint.Store) checkpoint.BatchDeleter {
	t.Helper()
	bd, ok := s.(checkpoint.BatchDeleter)
	if !ok {
		t.Skipf("%T does not implement checkpoint.BatchDeleter", s)
	}
	return bd
}

// testDeleteMany is the engine's purge with a BatchDeleter: one call
// deletes the entries that fell out of retention, more than one request's
// worth for a store with small limits (DynamoDB takes 25 deletes per
// call), along with names that do not exist, a name given twice and a
// large object.
func testDeleteMany(t *testing.T, s checkpoint.Store) {
	bd := batchDeleter(t, s)
	ctx := t.Context()
	const n, keep = 60, 10
	fillLogs(t, s, n)
	big := bytes.Repeat([]byte("large object "), 80_000) // over a DynamoDB item
	mustCreate(t, s, "sinks/big/a", big)
	if err := s.Put(ctx, "sinks/big/b", big); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range n - keep {
		names = append(names, fmt.Sprintf("commits/%d", i), fmt.Sprintf("offsets/%d", i))
	}
	names = append(names, "offsets/3", "offsets/1000", "never/created", "sinks/big/a", "sinks/big/b")
	if err := bd.DeleteMany(ctx, names); err != nil {
		t.Fatalf("DeleteMany of %d names: %v", len(names), err)
	}
	want := batchNames(n-keep, n)
	wantList(t, s, "offsets", want)
	wantList(t, s, "commits", want)
	wantList(t, s, "sinks/big", nil)
	wantList(t, s, "", []string{"metadata"})
	for _, name := range []string{"offsets/0", "commits/49", "sinks/big/a", "sinks/big/b"} {
		if _, err := s.Read(ctx, name); !errors.Is(err, checkpoint.ErrNotExist) {
			t.Fatalf("Read(%s) after DeleteMany = %v, want ErrNotExist", name, err)
		}
	}
	// Nothing to do, or only missing names: no error.
	if err := bd.DeleteMany(ctx, nil); err != nil {
		t.Fatalf("DeleteMany(nil) = %v", err)
	}
	if err := bd.DeleteMany(ctx, names); err != nil {
		t.Fatalf("DeleteMany of deleted names = %v, want nil", err)
	}
	wantList(t, s, "offsets", want)
	// A deleted name may be written again, and deleted again.
	mustCreate(t, s, "offsets/0", []byte("new"))
	wantContent(t, s, "offsets/0", []byte("new"))
	mustCreate(t, s, "sinks/big/a", big[:1000])
	wantContent(t, s, "sinks/big/a", big[:1000])
	if err := bd.DeleteMany(ctx, []string{"offsets/0", "sinks/big/a"}); err != nil {
		t.Fatal(err)
	}
	wantList(t, s, "offsets", want)
	wantList(t, s, "sinks/big", nil)
}

// testDeleteManyInvalid: an invalid name or a done context deletes nothing.
func testDeleteManyInvalid(t *testing.T, s checkpoint.Store) {
	bd := batchDeleter(t, s)
	ctx := t.Context()
	mustCreate(t, s, "offsets/1", []byte("o"))
	mustCreate(t, s, "offsets/2", []byte("o"))
	for _, bad := range []string{"", "../x", "offsets/a b", "x/"} {
		err := bd.DeleteMany(ctx, []string{"offsets/1", bad, "offsets/2"})
		if err == nil || errors.Is(err, checkpoint.ErrNotExist) || errors.Is(err, checkpoint.ErrExist) {
			t.Errorf("DeleteMany with %q = %v, want an invalid-name error", bad, err)
		}
	}
	wantList(t, s, "offsets", []string{"1", "2"})
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := bd.DeleteMany(canceled, []string{"offsets/1"}); !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteMany with a canceled context = %v, want context.Canceled", err)
	}
	wantList(t, s, "offsets", []string{"1", "2"})
}

func testPut(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	if err := s.Put(ctx, "metadata", []byte("v1")); err != nil {
		t.Fatalf("Put on a missing object: %v", err)
	}
	wantContent(t, s, "metadata", []byte("v1"))
	if err := s.Put(ctx, "metadata", []byte("version 2, longer")); err != nil {
		t.Fatalf("Put over an object: %v", err)
	}
	wantContent(t, s, "metadata", []byte("version 2, longer"))
	if err := s.Put(ctx, "metadata", []byte("3")); err != nil {
		t.Fatalf("Put over an object: %v", err)
	}
	wantContent(t, s, "metadata", []byte("3"))
	if err := s.Create(ctx, "metadata", []byte("4")); !errors.Is(err, checkpoint.ErrExist) {
		t.Fatalf("Create after Put = %v, want ErrExist", err)
	}
	wantContent(t, s, "metadata", []byte("3"))
}

func testReadMissing(t *testing.T, s checkpoint.Store) {
	mustCreate(t, s, "offsets/1", []byte("x"))
	for _, name := range []string{"metadata", "offsets/2", "offsets/1/x", "no/such/dir/x", "offsets"} {
		if _, err := s.Read(t.Context(), name); !errors.Is(err, checkpoint.ErrNotExist) {
			t.Errorf("Read(%q) = %v, want ErrNotExist", name, err)
		}
	}
}

func testList(t *testing.T, s checkpoint.Store) {
	for i := range 12 {
		mustCreate(t, s, fmt.Sprintf("offsets/%d", i), []byte("o"))
	}
	mustCreate(t, s, "offsets/x-y_z.json", []byte("o"))
	mustCreate(t, s, "offsets/sub/nested", []byte("o"))
	mustCreate(t, s, "offsets2/99", []byte("o"))
	mustCreate(t, s, "commits/0", []byte("c"))
	mustCreate(t, s, "metadata", []byte("m"))

	want := []string{"0", "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9", "x-y_z.json"}
	wantList(t, s, "offsets", want)
	wantList(t, s, "offsets/sub", []string{"nested"})
	wantList(t, s, "offsets2", []string{"99"})
	wantList(t, s, "commits", []string{"0"})
	wantList(t, s, "", []string{"metadata"})

	// A lock is not an object, whatever the store keeps for it.
	release, err := s.Lock(t.Context(), "list test")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	wantList(t, s, "", []string{"metadata"})
}

func testListMissing(t *testing.T, s checkpoint.Store) {
	wantList(t, s, "offsets", nil)
	wantList(t, s, "", nil)
	mustCreate(t, s, "commits/0", []byte("c"))
	wantList(t, s, "offsets", nil)
	wantList(t, s, "commit", nil) // a prefix of a dir is not the dir
	wantList(t, s, "commits/0", nil)
}

func testDelete(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	mustCreate(t, s, "commits/1", []byte("a"))
	mustCreate(t, s, "commits/2", []byte("b"))
	if err := s.Delete(ctx, "commits/1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Read(ctx, "commits/1"); !errors.Is(err, checkpoint.ErrNotExist) {
		t.Fatalf("Read after Delete = %v, want ErrNotExist", err)
	}
	wantList(t, s, "commits", []string{"2"})
	if err := s.Delete(ctx, "commits/1"); !errors.Is(err, checkpoint.ErrNotExist) {
		t.Fatalf("second Delete = %v, want ErrNotExist", err)
	}
	if err := s.Delete(ctx, "never/created"); !errors.Is(err, checkpoint.ErrNotExist) {
		t.Fatalf("Delete of a missing object = %v, want ErrNotExist", err)
	}
	// A deleted name can be created again.
	mustCreate(t, s, "commits/1", []byte("again"))
	wantContent(t, s, "commits/1", []byte("again"))
	wantContent(t, s, "commits/2", []byte("b"))
}

func testNestedNames(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	mustCreate(t, s, "sinks/file/x", []byte("manifest"))
	mustCreate(t, s, "sinks/file/.y", []byte("dot file"))
	if err := s.Put(ctx, "sinks/other/deep/er/z", []byte("z")); err != nil {
		t.Fatal(err)
	}
	wantContent(t, s, "sinks/file/x", []byte("manifest"))
	wantContent(t, s, "sinks/other/deep/er/z", []byte("z"))
	wantList(t, s, "sinks/file", []string{".y", "x"})
	wantList(t, s, "sinks", nil) // only objects, not "directories"
	wantList(t, s, "sinks/other/deep/er", []string{"z"})
	if err := s.Delete(ctx, "sinks/file/x"); err != nil {
		t.Fatal(err)
	}
	wantList(t, s, "sinks/file", []string{".y"})
}

func testLock(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	release, err := s.Lock(ctx, "query q1 on host-a")
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	for range 2 {
		_, err = s.Lock(ctx, "query q1 on host-b")
		if !errors.Is(err, checkpoint.ErrLocked) {
			t.Fatalf("Lock while held = %v, want an error wrapping ErrLocked", err)
		}
		for _, want := range []string{"checkpoint in use", s.Location(), "query q1 on host-a"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Lock while held: error %q does not mention %q", err, want)
			}
		}
	}
	// The lock protects nothing by itself: the holder's reads and writes work.
	mustCreate(t, s, "metadata", []byte("m"))
	if err := release(); err != nil {
		t.Fatalf("release: %v", err)
	}
	release2, err := s.Lock(ctx, "query q1 on host-b")
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	if err := release2(); err != nil {
		t.Fatalf("release: %v", err)
	}
	release3, err := s.Lock(ctx, "query q1 on host-c")
	if err != nil {
		t.Fatalf("third Lock: %v", err)
	}
	if err := release3(); err != nil {
		t.Fatalf("release: %v", err)
	}
}

func testLargeObject(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	data := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(data)
	mustCreate(t, s, "sinks/big/create", data)
	wantContent(t, s, "sinks/big/create", data)
	data[0]++
	if err := s.Put(ctx, "sinks/big/put", data); err != nil {
		t.Fatal(err)
	}
	wantContent(t, s, "sinks/big/put", data)
}

func testBinarySafe(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	all := make([]byte, 0, 512)
	for i := range 256 {
		all = append(all, byte(i))
	}
	for i := range 256 {
		all = append(all, byte(255-i))
	}
	objects := map[string][]byte{
		"bin/all-bytes":   all,
		"bin/empty":       {},
		"bin/nul":         {0},
		"bin/invalid-utf": []byte("\xff\xfe\x00abc\r\n\x1a"),
		"bin/newlines":    []byte("\n\n"),
	}
	for name, data := range objects {
		mustCreate(t, s, name, data)
		wantContent(t, s, name, data)
		if err := s.Put(ctx, name+"-put", data); err != nil {
			t.Fatal(err)
		}
		wantContent(t, s, name+"-put", data)
	}
}

func testIsolation(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	data := []byte("original")
	mustCreate(t, s, "a", data)
	data[0] = 'X'
	wantContent(t, s, "a", []byte("original"))
	if err := s.Put(ctx, "b", data); err != nil {
		t.Fatal(err)
	}
	data[0] = 'Y'
	wantContent(t, s, "b", []byte("Xriginal"))
	got, err := s.Read(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	got[0] = 'Z'
	wantContent(t, s, "a", []byte("original"))
}

// testPutAtomic checks that a reader sees a whole old or a whole new object
// while Puts replace it.
func testPutAtomic(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	const size = 256 << 10
	versions := [][]byte{bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte{'b'}, size)}
	if err := s.Put(ctx, "metadata", versions[0]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for i := range 20 {
			if err := s.Put(ctx, "metadata", versions[i%2]); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for reader := range 2 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-done:
					if n > 0 {
						return
					}
				default:
				}
				got, err := s.Read(ctx, "metadata")
				if err != nil {
					t.Errorf("reader %d: Read during Put: %v", reader, err)
					return
				}
				if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
					t.Errorf("reader %d: Read during Put returned %d bytes that are neither version", reader, len(got))
					return
				}
			}
		})
	}
	wg.Wait()
}

func testInvalidNames(t *testing.T, s checkpoint.Store) {
	ctx := t.Context()
	mustCreate(t, s, "x/y", []byte("y"))
	bad := []string{"", "/abs", "/", "..", ".", "../x", "x/../y", "x/./y", "x//y", "x/", "a b", `a\b`, "a:b", "é", "x/y\x00", "a*"}
	for _, name := range bad {
		for op, call := range map[string]func() error{
			"Create": func() error { return s.Create(ctx, name, []byte("z")) },
			"Put":    func() error { return s.Put(ctx, name, []byte("z")) },
			"Read":   func() error { _, err := s.Read(ctx, name); return err },
			"Delete": func() error { return s.Delete(ctx, name) },
		} {
			err := call()
			if err == nil || errors.Is(err, checkpoint.ErrNotExist) || errors.Is(err, checkpoint.ErrExist) {
				t.Errorf("%s(%q) = %v, want an invalid-name error", op, name, err)
			}
		}
		if name == "" {
			continue // List("") lists the top level
		}
		if _, err := s.List(ctx, name); err == nil {
			t.Errorf("List(%q) succeeded, want an invalid-name error", name)
		}
	}
	wantContent(t, s, "x/y", []byte("y"))
	wantList(t, s, "", nil)
	wantList(t, s, "x", []string{"y"})
}

func testCanceledContext(t *testing.T, s checkpoint.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Create(ctx, "offsets/0", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a canceled context = %v, want context.Canceled", err)
	}
	if err := s.Put(ctx, "offsets/1", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.Lock(ctx, "canceled"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a canceled context = %v, want context.Canceled", err)
	}
	wantList(t, s, "offsets", nil)
	release, err := s.Lock(t.Context(), "live")
	if err != nil {
		t.Fatalf("Lock after a canceled Lock: %v", err)
	}
	release()
}

func mustCreate(t *testing.T, s checkpoint.Store, name string, data []byte) {
	t.Helper()
	if err := s.Create(t.Context(), name, data); err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
}

func wantContent(t *testing.T, s checkpoint.Store, name string, want []byte) {
	t.Helper()
	got, err := s.Read(t.Context(), name)
	if err != nil {
		t.Fatalf("Read(%q): %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Read(%q) = %s, want %s", name, summary(got), summary(want))
	}
}

func wantList(t *testing.T, s checkpoint.Store, dir string, want []string) {
	t.Helper()
	got, err := s.List(t.Context(), dir)
	if err != nil {
		t.Fatalf("List(%q): %v", dir, err)
	}
	if len(got) != 0 || len(want) != 0 {
		if !slices.Equal(got, want) {
			t.Fatalf("List(%q) = %q, want %q", dir, got, want)
		}
	}
}

// summary describes content briefly: large objects make unreadable failures.
func summary(b []byte) string {
	if len(b) <= 64 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes starting %q", len(b), b[:32])
}

// DeleteManyFenced checks a store whose Lock lease the caller has just
// had taken over by another run (and which holds offsets/1): within a few
// seconds DeleteMany is refused with checkpoint.ErrLocked, and a refused
// DeleteMany deletes nothing.
func DeleteManyFenced(t *testing.T, s checkpoint.BatchDeleter, read func(name string) error) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.DeleteMany(ctx, []string{"offsets/0"})
		if errors.Is(err, checkpoint.ErrLocked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DeleteMany after the lease was taken over = %v, want ErrLocked", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.DeleteMany(ctx, []string{"offsets/1"}); !errors.Is(err, checkpoint.ErrLocked) {
		t.Fatalf("DeleteMany after the lease was lost = %v, want ErrLocked", err)
	}
	if err := read("offsets/1"); err != nil {
		t.Fatalf("offsets/1 after a refused DeleteMany: %v", err)
	}
}
