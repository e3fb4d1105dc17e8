package loadtest

import (
	"strings"
	"testing"
	"time"
)

// TestParseMetrics: unlabelled samples by name, and a cluster node's
// parley_node_info / parley_node_calls (labelled by node_id) by their
// bare names with the node's id; other labelled samples are skipped.
func TestParseMetrics(t *testing.T) {
	m, node := parseMetrics(`# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_resident_memory_bytes 4.2e+07
parley_sfu_packets_out_total 1000 1700000000000
parley_node_info{node_id="n2"} 1
parley_node_calls{node_id="n2"} 3
parley_sfu_receiver_loss_ratio_bucket{le="0.01"} 7
garbage line
`)
	want := map[string]float64{"process_cpu_seconds_total": 12.5, "process_resident_memory_bytes": 42e6,
		"parley_sfu_packets_out_total": 1000, "parley_node_info": 1, "parley_node_calls": 3}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("parsed %v, want only %v", m, want)
	}
	if node != "n2" {
		t.Errorf("node id %q, want n2", node)
	}
}

func TestMetricsURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://10.0.0.5:8080":           "http://10.0.0.5:8080/metrics",
		"http://10.0.0.5:8080/":          "http://10.0.0.5:8080/metrics",
		"https://n1.example.org/metrics": "https://n1.example.org/metrics",
		"http://h/prefix":                "http://h/prefix/metrics",
	} {
		if got, err := metricsURL(in); err != nil || got != want {
			t.Errorf("metricsURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "10.0.0.5:8080", "ftp://h", "http://", "http://u:p@h", "http://h/?x=1"} {
		if _, err := metricsURL(bad); err == nil {
			t.Errorf("metricsURL(%q) accepted", bad)
		}
	}
	c := Config{URL: "http://lb", Token: "t", Rooms: 1, Publishers: 1, Duration: time.Second, Video: "none",
		Metrics: []string{"http://a", "http://a/metrics", "nope"}}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "given twice") || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Validate: %v; want the duplicate and the bad address named", err)
	}
}

// TestUsagePerNode: the sum over nodes and each node's figures; a node
// that did not answer makes the sum unavailable and says why.
func TestUsagePerNode(t *testing.T) {
	s := func(cpu, rss, pkts, calls float64, node string) sample {
		return sample{vals: map[string]float64{"process_cpu_seconds_total": cpu, "process_resident_memory_bytes": rss,
			"parley_sfu_packets_out_total": pkts, "parley_node_calls": calls, "parley_participants": 3 * calls}, nodeID: node}
	}
	src := []string{"http://a/metrics", "http://b/metrics"}
	before := []sample{s(1, 10e6, 0, 0, "a"), s(1, 20e6, 0, 0, "b")}
	mid := []sample{s(2, 11e6, 100, 2, "a"), s(3, 21e6, 100, 2, "b")}
	end := []sample{s(4, 12e6, 1100, 2, "a"), s(4, 22e6, 2100, 2, "b")}
	sum, nodes := usage(src, before, mid, end, 12, 10*time.Second)
	if !sum.Available || sum.CPUSeconds != 3 || sum.PacketsForwarded != 3000 || sum.MicrosPerForwarded != 1000 || sum.CPUPercent != 30 || sum.ResidentMB != 34 {
		t.Errorf("sum %+v", sum)
	}
	if n := nodes[0]; n.NodeID != "a" || n.Calls != 2 || n.Participants != 6 || n.CPUSeconds != 2 || n.CPUPercent != 20 || n.MicrosPerForwarded != 2000 {
		t.Errorf("node a %+v", n)
	}
	if n := nodes[1]; n.NodeID != "b" || n.CPUSeconds != 1 || n.PacketsForwarded != 2000 {
		t.Errorf("node b %+v", n)
	}
	end[1] = sample{err: errBroken}
	sum, nodes = usage(src, before, mid, end, 12, 10*time.Second)
	if sum.Available || nodes[1].Available || nodes[1].Error == "" || !nodes[0].Available {
		t.Errorf("with node b silent: sum %+v, nodes %+v", sum, nodes)
	}
}

var errBroken = errorString("connection refused")

type errorString string

func (e errorString) Error() string { return string(e) }

func FuzzParseMetrics(f *testing.F) {
	f.Add("process_cpu_seconds_total 1\nparley_node_info{node_id=\"n1\"} 1\n")
	f.Add("parley_node_calls{node_id=\"a}\"} 2 3\n# x\n{} \n")
	f.Fuzz(func(t *testing.T, body string) {
		parseMetrics(body)
	})
}
