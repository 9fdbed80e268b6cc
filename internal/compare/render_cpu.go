package compare

import (
	"fmt"
	"time"
)

// cpuView is "Where the time goes on Citus": for each column whose loads
// had their CPU time measured, that time per request, part by part.
type cpuView struct {
	Title  string
	Notes  []string
	Tables []textTable
}

// newCPUView is nil when no load of any column had its CPU time measured.
func newCPUView(r Report, at string) *cpuView {
	var tables []textTable
	for _, s := range r.Strategies {
		if t, ok := cpuTable(s, r.Machine.Cores); ok {
			tables = append(tables, t)
		}
	}
	if len(tables) == 0 {
		return nil
	}
	cores := "this machine's cores"
	if r.Machine.Cores > 0 {
		cores = fmt.Sprintf("this machine's %d cores", r.Machine.Cores)
	}
	return &cpuView{
		Title: "Where the time goes on Citus" + at,
		Notes: []string{
			fmt.Sprintf("The coordinator, the %d workers, the tenancy server and the load generator all ran on %s at once, so these figures are not what separate machines would give: there each node would have cores of its own, and the hop from coordinator to worker would cross a network, adding latency but taking no CPU from the others.", CitusWorkers, cores),
			"Every tenant statement goes from the server to the coordinator, which plans it, picks the worker from the tenant id in it, sends it on and passes the rows back: the coordinator's CPU time is what that extra hop costs, the workers' what the statements themselves cost.",
			"CPU time (user + system, from /proc) that each part used during each load, divided by the requests answered in it, failed ones included. A node is its postmaster and every child process (backends, background workers; backends that ended during the load included); the load generator is compare's own process, and wrk when it ran the load. Cores busy is CPU time over the time between the readings taken just before and after the load: the four parts', then every process's on the machine (from /proc/stat), so that the difference is other work that shared the cores with them; near all the cores, the load was bounded by the cores rather than by Citus.",
		},
		Tables: tables,
	}
}

// cpuTable is a row per load of s whose CPU time was measured.
func cpuTable(s StrategyResult, cores int) (textTable, bool) {
	t := textTable{Header: []string{"CPU per request, " + s.Name, "coordinator", "workers", "tenancy server", "load generator", "all four", "cores busy: these four / the machine"}}
	for _, kind := range reportedKinds(Report{Strategies: []StrategyResult{s}}) {
		l, ok := findLoad(s, kind)
		if !ok || l.CPU == nil {
			continue
		}
		row := []string{kind}
		c := *l.CPU
		for _, d := range []time.Duration{c.Coordinator, c.Workers, c.Server, c.Generator, c.Total()} {
			row = append(row, cpuCell(d, l.Requests))
		}
		row = append(row, coresCell(coresBusy(c, l.Elapsed), machineBusy(c, l.Elapsed), cores))
		t.Rows = append(t.Rows, row)
	}
	return t, len(t.Rows) > 0
}

func cpuCell(d time.Duration, requests int) string {
	if requests <= 0 {
		return noFigure
	}
	return humanDuration(perRequest(d, requests))
}

// coresCell is how many cores the four parts kept busy and the whole
// machine did (0: unknown), of cores (0: unknown).
func coresCell(parts, machine float64, cores int) string {
	if parts <= 0 {
		return noFigure
	}
	cell := fmt.Sprintf("%.2f", parts)
	if machine > 0 {
		cell += fmt.Sprintf(" / %.2f", machine)
	}
	if cores > 0 {
		cell += fmt.Sprintf(" of %d", cores)
	}
	return cell
}
