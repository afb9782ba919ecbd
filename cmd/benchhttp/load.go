package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoints the benchmark drives.
const (
	epGet  = "get"  // GET /items/{id}
	epList = "list" // GET /items?limit=20
	epPost = "post" // POST /items
)

var endpointPaths = map[string]string{epGet: "GET /items/{id}", epList: "GET /items?limit=20", epPost: "POST /items"}

// listLimit is the page size of the list endpoint; every tenant holds at
// least this many seeded items, so a full page is what a right answer has.
const listLimit = 20

// workload says what requests to make of one server: round-robin over the
// first Tenants tenants (tokens spread evenly), item ids within each
// tenant's seeded rows.
type workload struct {
	base     string   // http://127.0.0.1:port
	variant  string   // a, b, c or d
	endpoint string   // epGet, epList, epPost
	tenants  []string // names, for the tenant-aware variants; nil for (b) and (c)
	tokens   []string // tokens[i] is tenants[i]'s
	items    int      // seeded items per tenant (and per tenant-sized slice of the plain table)
	plainN   int      // rows (b) and (c) read from: tenants × items
	seq      atomic.Int64
}

// outcome of one request.
type outcome int

const (
	outOK outcome = iota
	outWrongTenant
	outFailed
)

// do sends request number n and checks its answer: the status, and for
// the tenant-aware variants that every item returned belongs to the
// token's tenant (their names start with "<tenant>-").
func (w *workload) do(ctx context.Context, client *http.Client) (outcome, error) {
	n := int(w.seq.Add(1) - 1)
	var tenant, token string
	k := 0
	if len(w.tenants) > 0 {
		tenant, token = w.tenants[n%len(w.tenants)], w.tokens[n%len(w.tokens)]
		k = (n / len(w.tenants)) % w.items
	} else {
		k = n % w.plainN
	}
	var req *http.Request
	var err error
	var sent string
	switch w.endpoint {
	case epGet:
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, w.base+"/items/"+strconv.Itoa(k+1), nil)
	case epList:
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, w.base+"/items?limit="+strconv.Itoa(listLimit), nil)
	case epPost:
		sent = itemName(tenant, w.variant, n)
		body, _ := json.Marshal(map[string]string{"name": sent, "description": "benchhttp"})
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/items", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	default:
		return outFailed, fmt.Errorf("unknown endpoint %q", w.endpoint)
	}
	if err != nil {
		return outFailed, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return outFailed, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return outFailed, err
	}
	want := http.StatusOK
	if w.endpoint == epPost {
		want = http.StatusCreated
	}
	if resp.StatusCode != want {
		return outFailed, fmt.Errorf("%s: status %d: %.200s", req.URL.Path, resp.StatusCode, body)
	}
	type item struct {
		Name string `json:"name"`
	}
	var got []item
	if w.endpoint == epList {
		if err := json.Unmarshal(body, &got); err != nil {
			return outFailed, err
		}
		if len(got) != listLimit {
			return outFailed, fmt.Errorf("list: %d items, want %d", len(got), listLimit)
		}
	} else {
		var it item
		if err := json.Unmarshal(body, &it); err != nil {
			return outFailed, err
		}
		got = []item{it}
	}
	if w.endpoint == epPost && got[0].Name != sent {
		return outFailed, fmt.Errorf("post: created %q, sent %q", got[0].Name, sent)
	}
	if tenant != "" {
		for _, it := range got {
			if !strings.HasPrefix(it.Name, tenant+"-") {
				return outWrongTenant, nil
			}
		}
	}
	return outOK, nil
}

// itemName tags an item with its tenant and the variant that made it, so a
// row found in the wrong schema afterwards says who put it there. Tenant
// names here contain no '-'.
func itemName(tenant, variant string, n int) string {
	if tenant == "" {
		tenant = "plain"
	}
	return tenant + "-" + variant + "-" + strconv.Itoa(n)
}

// tally counts outcomes and keeps the first few errors for the report.
type tally struct {
	ok, wrong, failed atomic.Int64
	mu                sync.Mutex
	firstErrs         []string
}

func (t *tally) add(o outcome, err error) {
	switch o {
	case outOK:
		t.ok.Add(1)
	case outWrongTenant:
		t.wrong.Add(1)
	default:
		t.failed.Add(1)
		t.mu.Lock()
		if len(t.firstErrs) < 3 && err != nil {
			t.firstErrs = append(t.firstErrs, err.Error())
		}
		t.mu.Unlock()
	}
}

func (t *tally) done() int64 { return t.ok.Load() + t.wrong.Load() + t.failed.Load() }

// closedLoop keeps conc requests in flight for d: each worker sends its
// next request when the last one is answered. It returns when d is over
// and every worker has stopped.
func closedLoop(ctx context.Context, client *http.Client, w *workload, conc int, d time.Duration) (*tally, time.Duration) {
	var t tally
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				o, err := w.do(context.WithoutCancel(ctx), client)
				t.add(o, err)
			}
		})
	}
	wg.Wait()
	return &t, time.Since(start)
}

// openLoop offers rate requests per second for warm+d on a fixed
// schedule, whatever the server's pace, and measures each latency from
// the request's scheduled send time, not from when it could be sent: a
// server that falls behind sees its queueing delay in its latencies
// instead of slowing the load down (no coordinated omission). Requests
// scheduled in the first warm are sent but not recorded. At most
// maxInFlight requests are outstanding; past that the schedule still runs
// and the wait shows in the latencies.
func openLoop(ctx context.Context, client *http.Client, w *workload, rate float64, warm, d time.Duration, maxInFlight int) (*tally, []time.Duration) {
	var t tally
	interval := time.Duration(float64(time.Second) / rate)
	total := int((warm + d) / interval)
	skip := int(warm / interval)
	lat := make([]time.Duration, total)
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	sent := 0
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		sent++
		wg.Go(func() {
			defer func() { <-sem }()
			o, err := w.do(ctx, client)
			lat[i] = time.Since(at)
			if i >= skip {
				t.add(o, err)
			}
		})
	}
	wg.Wait()
	return &t, lat[min(skip, sent):sent]
}

// newClient is one keep-alive HTTP client per server, with enough idle
// connections that open-loop bursts do not churn them.
func newClient(maxConns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        maxConns,
			MaxIdleConnsPerHost: maxConns,
			IdleConnTimeout:     2 * time.Minute,
			DisableCompression:  true,
		},
	}
}
