package prom_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/engine"
	"github.com/shardflow/shardflow/metrics/prom"
)

var leaseMetricNames = []string{
	"shardflow_leases_held", "shardflow_worker_info",
	"shardflow_leases_taken_total", "shardflow_leases_lost_total",
	"shardflow_leases_handed_off_total", "shardflow_leases_received_total",
	"shardflow_lease_steals_asked_total", "shardflow_lease_renewals_total",
	"shardflow_lease_table_reads_total", "shardflow_lease_table_writes_total", "shardflow_lease_table_failures_total",
}

// workerProgress is a progress record whose source metrics carry the lease
// coordinator's counters, as in worker mode. n scales the counters.
func workerProgress(batch int64, held, n int) shardflow.Progress {
	return shardflow.Progress{BatchID: batch, Sources: []engine.SourceProgress{{
		Description: "KinesisSource[orders]",
		Metrics: map[string]string{
			"leasesHeld": fmt.Sprint(held), "leasesTaken": fmt.Sprint(2 * n), "leasesLost": fmt.Sprint(n),
			"leasesHandedOff": fmt.Sprint(3 * n), "leasesReceived": fmt.Sprint(4 * n), "leaseStealsAsked": fmt.Sprint(5 * n),
			"leaseRenewals": fmt.Sprint(10 * n), "leaseTableWrites": fmt.Sprint(20 * n), "leaseTableReads": fmt.Sprint(30 * n),
			"leaseTableFailures": fmt.Sprint(n), "workerId": "worker-a",
			"dataLossEvents": "0",
		},
	}}}
}

// leaseValues gathers the lease metrics: value by name (the worker's id
// for shardflow_worker_info), and the help text of each.
func leaseValues(t *testing.T, reg prometheus.Gatherer) (map[string]float64, map[string]string) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vals, help := map[string]float64{}, map[string]string{}
	for _, mf := range mfs {
		name := mf.GetName()
		if !slices.Contains(leaseMetricNames, name) {
			continue
		}
		help[name] = mf.GetHelp()
		for _, m := range mf.GetMetric() {
			key := name
			for _, lp := range m.GetLabel() {
				key += "{" + lp.GetName() + "=" + lp.GetValue() + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				vals[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				vals[key] = m.GetGauge().GetValue()
			default:
				t.Errorf("%s is a %v", name, mf.GetType())
			}
		}
	}
	return vals, help
}

func want(held, taken, lost, handedOff, received, steals, renewals, reads, writes, failures float64) map[string]float64 {
	return map[string]float64{
		"shardflow_leases_held": held, "shardflow_worker_info{worker_id=worker-a}": 1,
		"shardflow_leases_taken_total": taken, "shardflow_leases_lost_total": lost,
		"shardflow_leases_handed_off_total": handedOff, "shardflow_leases_received_total": received,
		"shardflow_lease_steals_asked_total": steals, "shardflow_lease_renewals_total": renewals,
		"shardflow_lease_table_reads_total": reads, "shardflow_lease_table_writes_total": writes,
		"shardflow_lease_table_failures_total": failures,
	}
}

// TestLeaseMetrics feeds progress records with the lease coordinator's
// counters: they become the lease metrics, counters keep counting across a
// coordinator that starts again from 0, leases held drops to 0 when the
// query ends, and a query outside worker mode has no lease metric at all.
func TestLeaseMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	l := m.Listener()
	l.QueryStarted(shardflow.QueryStarted{ID: "q"})

	// Outside worker mode: no lease metric.
	l.QueryProgress(shardflow.Progress{BatchID: 0, Sources: []engine.SourceProgress{{Metrics: map[string]string{"dataLossEvents": "0"}}}})
	if got, _ := leaseValues(t, reg); len(got) != 0 {
		t.Fatalf("outside worker mode: lease metrics %v, want none", got)
	}

	check := func(when string, w map[string]float64) {
		t.Helper()
		got, _ := leaseValues(t, reg)
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("%s: lease metrics (-want +got):\n%s", when, diff)
		}
	}
	l.QueryProgress(workerProgress(1, 4, 1))
	check("batch 1", want(4, 2, 1, 3, 4, 5, 10, 30, 20, 1))
	l.QueryProgress(workerProgress(2, 3, 3))
	check("batch 2", want(3, 6, 3, 9, 12, 15, 30, 90, 60, 3))
	// A new coordinator counts from 0: its counts add to the totals.
	l.QueryProgress(workerProgress(3, 2, 1))
	check("after a coordinator restart", want(2, 8, 4, 12, 16, 20, 40, 120, 80, 4))
	l.QueryTerminated(shardflow.QueryTerminated{ID: "q"})
	check("after the query ended", want(0, 8, 4, 12, 16, 20, 40, 120, 80, 4))

	if _, help := leaseValues(t, reg); len(help) != len(leaseMetricNames) {
		t.Errorf("lease metrics with a help text: %v, want all of %v", help, leaseMetricNames)
	}
}
