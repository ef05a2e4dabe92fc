package kdsfake

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// snapshotFile is the name of the state file in Config.DataDir.
const snapshotFile = "kdsfake.state"

// snapshotVersion is the format version of the state file.
const snapshotVersion = 1

// The snapshot types are the on-disk form of the server state (gob).
type (
	snapState struct {
		Version int
		Seq     uint64
		Streams []snapStream
	}
	snapStream struct {
		Account, Name, Mode string
		Created             time.Time
		Retention           time.Duration
		Tags                map[string]string
		Shards              []snapShard
		Consumers           []snapConsumer
	}
	snapShard struct {
		Parent, AdjParent  string
		HashStart, HashEnd [2]uint64
		StartCounter       uint64
		EndCounter         uint64
		Created, ClosedAt  time.Time
		Gone               bool
		Counters, Arrivals []int64
		PartitionKeys      []string
		Data               [][]byte
	}
	snapConsumer struct {
		Name, ARN string
		Created   time.Time
	}
)

// snapshot copies the server state. Streams being deleted and consumers
// being deregistered are left out: a restart completes those.
func (s *Server) snapshot() snapState {
	state := snapState{Version: snapshotVersion, Seq: s.seq.Load()}
	s.mu.RLock()
	var streams []*stream
	for _, a := range s.accounts {
		for _, st := range a.streams {
			streams = append(streams, st)
		}
	}
	s.mu.RUnlock()
	for _, st := range streams {
		st.mu.RLock()
		if st.deleting {
			st.mu.RUnlock()
			continue
		}
		ss := snapStream{Account: st.account, Name: st.name, Mode: st.mode, Created: st.created, Retention: st.retention}
		for _, sh := range st.shards {
			x := snapShard{
				Parent: sh.parent, AdjParent: sh.adjParent,
				HashStart: [2]uint64{sh.hashStart.hi, sh.hashStart.lo}, HashEnd: [2]uint64{sh.hashEnd.hi, sh.hashEnd.lo},
				StartCounter: sh.startCounter, EndCounter: sh.endCounter,
				Created: sh.created, ClosedAt: sh.closedAt, Gone: sh.gone,
			}
			for i := range sh.recs {
				r := &sh.recs[i]
				x.Counters = append(x.Counters, int64(r.counter))
				x.Arrivals = append(x.Arrivals, r.arrival)
				x.PartitionKeys = append(x.PartitionKeys, r.pk)
				x.Data = append(x.Data, r.data)
			}
			ss.Shards = append(ss.Shards, x)
		}
		for _, co := range st.consumers {
			if !co.deleting {
				ss.Consumers = append(ss.Consumers, snapConsumer{co.name, co.arn, co.created})
			}
		}
		// Tags are copied while locked: the map is shared.
		tags := make(map[string]string, len(st.tags))
		for k, v := range st.tags {
			tags[k] = v
		}
		ss.Tags = tags
		st.mu.RUnlock()
		state.Streams = append(state.Streams, ss)
	}
	return state
}

// save writes a snapshot to DataDir: to a temporary file that is synced and
// then renamed over the old one, and the directory is synced, so a crash
// at any point leaves either the old or the new snapshot.
func (s *Server) save() error {
	s.dirty.Store(false)
	state := s.snapshot()
	if err := os.MkdirAll(s.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("kdsfake: data dir: %w", err)
	}
	path := filepath.Join(s.cfg.DataDir, snapshotFile)
	f, err := os.CreateTemp(s.cfg.DataDir, snapshotFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("kdsfake: snapshot: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	w := bufio.NewWriterSize(f, 1<<20)
	err = gob.NewEncoder(w).Encode(&state)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(s.cfg.DataDir)
	}
	if err != nil {
		s.dirty.Store(true)
		return fmt.Errorf("kdsfake: snapshot: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// load restores the state saved in DataDir, if any.
func (s *Server) load() error {
	f, err := os.Open(filepath.Join(s.cfg.DataDir, snapshotFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kdsfake: load state: %w", err)
	}
	defer f.Close()
	var state snapState
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&state); err != nil {
		return fmt.Errorf("kdsfake: load state from %s: %w", f.Name(), err)
	}
	if state.Version != snapshotVersion {
		return fmt.Errorf("kdsfake: state file %s has format %d, want %d", f.Name(), state.Version, snapshotVersion)
	}
	s.seq.Store(state.Seq)
	for _, ss := range state.Streams {
		st := &stream{
			account:   ss.Account,
			name:      ss.Name,
			arn:       s.streamARN(ss.Account, ss.Name),
			created:   ss.Created,
			mode:      ss.Mode,
			retention: ss.Retention,
			consumers: make(map[string]*consumer),
			tags:      ss.Tags,
			notify:    make(chan struct{}),
		}
		if st.tags == nil {
			st.tags = make(map[string]string)
		}
		for i, x := range ss.Shards {
			sh := &shard{
				idx: i, id: shardID(i), parent: x.Parent, adjParent: x.AdjParent,
				hashStart: u128{x.HashStart[0], x.HashStart[1]}, hashEnd: u128{x.HashEnd[0], x.HashEnd[1]},
				startCounter: x.StartCounter, endCounter: x.EndCounter,
				created: x.Created, closedAt: x.ClosedAt, gone: x.Gone,
			}
			sh.hashStartStr, sh.hashEndStr = sh.hashStart.String(), sh.hashEnd.String()
			if len(x.Counters) != len(x.Arrivals) || len(x.Counters) != len(x.PartitionKeys) || len(x.Counters) != len(x.Data) {
				return fmt.Errorf("kdsfake: state file %s is corrupt: shard %s of stream %s", f.Name(), sh.id, st.name)
			}
			sh.recs = make([]record, len(x.Counters))
			for j := range sh.recs {
				sh.recs[j] = record{counter: uint64(x.Counters[j]), arrival: x.Arrivals[j], pk: x.PartitionKeys[j], data: x.Data[j]}
			}
			st.shards = append(st.shards, sh)
		}
		for _, sc := range ss.Consumers {
			st.consumers[sc.Name] = &consumer{name: sc.Name, arn: sc.ARN, created: sc.Created}
		}
		a := s.accounts[st.account]
		if a == nil {
			a = &account{id: st.account, streams: make(map[string]*stream)}
			s.accounts[st.account] = a
		}
		a.streams[st.name] = st
	}
	return nil
}

// snapshotLoop saves the state every SnapshotInterval while it changes,
// until Close.
func (s *Server) snapshotLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.cfg.SnapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			if s.dirty.Load() {
				if err := s.save(); err != nil {
					s.log.Error("snapshot failed", "err", err)
				}
			}
		}
	}
}
