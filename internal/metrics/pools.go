package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"tenancy/strategy"
)

// poolCollector reads a strategy's pool figures at each scrape, labelled
// by strategy and pool only (multidb reports its tenant pools as one).
type poolCollector struct {
	strategy string
	pools    strategy.PoolStatsReporter

	open, idle, inUse                           *prometheus.Desc
	waits, waitSeconds, opened, closed, evicted *prometheus.Desc
}

func newPoolCollector(strategyName string, pools strategy.PoolStatsReporter) *poolCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "db_pool", name), help, []string{"strategy", "pool"}, nil)
	}
	return &poolCollector{
		strategy:    strategyName,
		pools:       pools,
		open:        desc("open_connections", "Connections to PostgreSQL open now, idle and in use."),
		idle:        desc("idle_connections", "Connections open and idle now."),
		inUse:       desc("in_use_connections", "Connections at work now."),
		waits:       desc("connection_waits_total", "Times a caller waited for a connection because the pool had none to give."),
		waitSeconds: desc("connection_wait_seconds_total", "Seconds callers spent waiting for a connection, in all."),
		opened:      desc("connections_opened_total", "Connections to PostgreSQL that logged in."),
		closed:      desc("connections_closed_total", "Connections closed, for any reason: idle or old, broken, or their pool closed."),
		evicted:     desc("evictions_total", "Pools the pool policy closed to make room for others (multidb's tenant pools)."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.idle, c.inUse, c.waits, c.waitSeconds, c.opened, c.closed, c.evicted} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.pools.PoolStats() {
		for _, m := range []struct {
			desc  *prometheus.Desc
			kind  prometheus.ValueType
			value float64
		}{
			{c.open, prometheus.GaugeValue, float64(p.Open)},
			{c.idle, prometheus.GaugeValue, float64(p.Idle)},
			{c.inUse, prometheus.GaugeValue, float64(p.InUse)},
			{c.waits, prometheus.CounterValue, float64(p.WaitCount)},
			{c.waitSeconds, prometheus.CounterValue, p.WaitDuration.Seconds()},
			{c.opened, prometheus.CounterValue, float64(p.Opened)},
			{c.closed, prometheus.CounterValue, float64(p.Closed)},
			{c.evicted, prometheus.CounterValue, float64(p.Evictions)},
		} {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value, c.strategy, p.Pool)
		}
	}
}
