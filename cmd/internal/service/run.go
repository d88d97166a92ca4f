package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/payworker/payworker/cmd/internal/redisconn"
	"github.com/payworker/payworker/dintero"
	"github.com/payworker/payworker/dintero/ratelimit"
	"github.com/payworker/payworker/idempotency"
	"github.com/payworker/payworker/worker"
)

// Run connects the parts and runs the worker until ctx is cancelled. A
// NATS or Redis that is down at start is waited for, not fatal; an HTTP
// address that cannot be listened on, or streams and a consumer whose
// settings break a guarantee (worker.ErrConfig), are.
func Run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	redis.SetLogger(redisLogger{log.With("component", "redis")})
	if cfg.Tracing {
		shutdown, err := startTracing(ctx, log)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = shutdown(sctx)
		}()
	}
	// With no exporter the spans go nowhere: the no-op tracer keeps the
	// requests' trace context passing through without making them (the
	// global tracer's would, ~1 µs and an allocation each).
	var tracer trace.Tracer
	if !cfg.Tracing {
		tracer = noop.NewTracerProvider().Tracer("github.com/payworker/payworker/worker")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	metrics := worker.NewMetrics(reg)

	rdb, store, closeRedis, err := connectRedis(cfg)
	if err != nil {
		return err
	}
	defer closeRedis()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go func() {
		if err := checkEviction(ctx, rdb, cfg, log); err != nil {
			stop(err)
		}
	}()
	var w *worker.Worker // Dintero's answers feed its throttle
	observe := func(op string, status int, elapsed time.Duration) {
		metrics.ObserveDintero(op, status, elapsed)
		if w != nil {
			w.ObserveDintero(op, status, elapsed)
		}
	}
	gw, err := newDintero(cfg, rdb, metrics, observe, log)
	if err != nil {
		return err
	}
	nc, js, closeNATS, err := connectNATS(cfg, log)
	if err != nil {
		return err
	}
	defer closeNATS()
	w, err = worker.New(js, store, gw, worker.Config{
		Namespace:         cfg.Namespace,
		Consumer:          cfg.Consumer,
		MaxInFlight:       cfg.MaxInFlight,
		AckWait:           cfg.AckWait,
		MaxDeliver:        cfg.MaxDeliver,
		SkipSetup:         cfg.SkipSetup,
		StreamReplicas:    cfg.StreamReplicas,
		ResolveSchedule:   cfg.ResolveSchedule,
		Tokens:            store,
		TokenKey:          cfg.tokenKey(),
		TokenLimits:       cfg.TokenLimits,
		DisableQuarantine: !cfg.TokenQuarantine,
		DunningSchedule:   cfg.DunningSchedule,
		DisableDunning:    !cfg.Dunning,
		ShutdownGrace:     cfg.ShutdownGrace,
		CallbackURL:       cfg.CallbackURL,
		Tracer:            tracer,
		Logger:            log,
		Metrics:           metrics,
	})
	if err != nil {
		return err
	}
	deps := dependencies(nc, w, rdb, gw, cfg)
	stopHTTP, err := serveHTTP(cfg, log, reg, deps, js, gw, store, metrics)
	if err != nil {
		return err
	}
	defer stopHTTP()
	go watch(ctx, log, deps)

	log.Info("payworker starting", "revision", Revision(), "namespace", cfg.Namespace, "nats", nc.ConnectedUrlRedacted(), "redis", cfg.Redis.Redacted(),
		"dintero", cfg.DinteroAPIURL, "max_in_flight", cfg.MaxInFlight)
	err = runWorker(ctx, w, log)
	if cause := context.Cause(ctx); errors.Is(cause, redisconn.ErrEvictingPolicy) {
		return cause
	}
	return err
}

// runWorker runs the worker, and runs it again when it stops early (NATS
// not there yet, the consumer not bound), until ctx is cancelled. Settings
// that break a guarantee end it: retrying would not help.
func runWorker(ctx context.Context, w *worker.Worker, log *slog.Logger) error {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		started := time.Now()
		err := w.Run(ctx)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // cancelled: a clean stop, whatever Run said on the way out
		}
		if errors.Is(err, worker.ErrConfig) {
			return err
		}
		if time.Since(started) > time.Minute {
			wait = time.Second // it ran fine for a while: start the backoff again
		}
		log.Warn("worker not running; retrying", "err", err, "in", wait.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// maxRedisPool bounds the Redis connection pool a URL without pool_size gets.
const maxRedisPool = 256

// connectRedis makes the idempotency store: on one Redis server, a
// Sentinel-managed primary or a Redis Cluster (REDIS_URL). Nothing is
// dialled yet.
func connectRedis(cfg *Config) (redis.UniversalClient, *idempotency.Store, func(), error) {
	// A charge's calls (claim, token, result) share the auto-pipeliner's
	// few connections; the pool serves the rarer ones (lease renewals,
	// releases, parking). Sized to the in-flight limit up to maxRedisPool:
	// go-redis gives each connection 64 KiB of buffers, so a pool as large
	// as 10,000 requests in flight would hold hundreds of MiB.
	rdb, err := cfg.Redis.NewClient(min(cfg.MaxInFlight, maxRedisPool))
	if err != nil {
		return nil, nil, nil, err
	}
	// Claim and Complete of concurrent requests share round trips: one
	// write and one read carry many scripts, for the worker and for Redis.
	batcher, err := rdb.AutoPipeline()
	if err != nil {
		_ = rdb.Close()
		return nil, nil, nil, fmt.Errorf("redis auto-pipeline: %w", err)
	}
	store, err := idempotency.New(rdb, idempotency.Options{
		Prefix:    cfg.IdempotencyPrefix,
		Retention: cfg.IdempotencyTTL,
		Lease:     cfg.AckWait,
		Batcher:   batcher,
	})
	if err != nil {
		_ = batcher.Close()
		_ = rdb.Close()
		return nil, nil, nil, err
	}
	return rdb, store, func() { _ = batcher.Close(); _ = rdb.Close() }, nil
}

// checkEviction refuses a Redis that may evict idempotency records (its
// maxmemory-policy is not noeviction; PAYWORKER_ALLOW_EVICTION=true runs
// anyway): an evicted claim is a forgotten charge. A Redis that does not
// answer yet is asked again until it does; one that cannot tell (no INFO
// memory) is warned about once. It returns only when ctx ends, or with
// the eviction error.
func checkEviction(ctx context.Context, rdb redis.UniversalClient, cfg *Config, log *slog.Logger) error {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := redisconn.CheckEviction(cctx, rdb, cfg.Redis.AllowEviction)
		cancel()
		var rerr redis.Error
		switch {
		case err == nil:
			return nil
		case errors.Is(err, redisconn.ErrEvictingPolicy):
			return cfg.Redis.Redact(err)
		case errors.As(err, &rerr):
			log.Warn("could not check Redis's maxmemory-policy; make sure it is noeviction", "err", cfg.Redis.Redact(err))
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// newDintero makes the Dintero client, with the rate limit shared through
// Redis when PAYWORKER_DINTERO_RATE is set.
func newDintero(cfg *Config, rdb redis.UniversalClient, metrics *worker.Metrics, observe func(string, int, time.Duration),
	log *slog.Logger) (*dintero.Client, error) {
	var limiter dintero.Limiter
	if cfg.DinteroRate > 0 {
		l, err := ratelimit.New(rdb, ratelimit.Config{Rate: cfg.DinteroRate, Key: cfg.IdempotencyPrefix + "rate:" + cfg.DinteroAccountID,
			Observe: metrics.ObserveRateWait})
		if err != nil {
			return nil, err
		}
		limiter = l
	}
	return dintero.New(dintero.Config{
		AccountID:     cfg.DinteroAccountID,
		ClientID:      cfg.DinteroClientID,
		ClientSecret:  cfg.DinteroClientSecret,
		APIURL:        cfg.DinteroAPIURL,
		AuthURL:       cfg.DinteroAuthURL,
		RootCAs:       cfg.DinteroRoots,
		SystemName:    "payworker",
		SystemVersion: Version(),
		Timeout:       cfg.DinteroTimeout,
		Logger:        log.With("component", "dintero"),
		Observe:       observe,
		Limiter:       limiter,
	})
}

// connectNATS connects to NATS, retrying forever in the background when it
// is not there yet.
func connectNATS(cfg *Config, log *slog.Logger) (*nats.Conn, jetstream.JetStream, func(), error) {
	nc, err := cfg.NATS.Connect(
		nats.Name("payworker"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if err != nil { // nil: we closed it ourselves
				log.Warn("NATS disconnected", "url", c.ConnectedUrlRedacted(), "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			// A slow consumer here means messages were dropped in this
			// process: they come back only after AckWait.
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("NATS error", "subject", subject, "err", err)
		}),
	)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("NATS %s: %w", cfg.NATS.Redacted(), cfg.NATS.Redact(err))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nc.Close, nil
}

// HTTP server bounds: no connection may be held open for nothing.
const (
	httpReadTimeout  = 10 * time.Second
	httpWriteTimeout = 60 * time.Second // a 30 s pprof profile fits
	httpIdleTimeout  = 30 * time.Second
	httpMaxHeader    = 16 << 10
)

// serveHTTP listens on the HTTP address (metrics, probes, pprof when on)
// and, when the callback endpoint is on, on the callback address (only
// the callback). A listen failure is an error: a worker without probes
// and metrics must not run on.
func serveHTTP(cfg *Config, log *slog.Logger, reg *prometheus.Registry, deps []dependency, pub worker.Publisher,
	gw *dintero.Client, store *idempotency.Store, metrics *worker.Metrics) (stop func(), err error) {
	mux := endpoints(reg, deps, cfg.PProf)
	var servers []*http.Server
	stop = func() {
		for _, srv := range servers {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
		}
	}
	if err := listen(&servers, cfg.HTTPAddr, "PAYWORKER_HTTP_ADDR", mux, log); err != nil {
		return nil, err
	}
	if cfg.CallbackSecret == "" {
		log.Info("DINTERO_CALLBACK_SECRET not set: the callback endpoint is off")
		return stop, nil
	}
	cb, err := worker.NewCallbacks(pub, gw, store, worker.CallbackConfig{
		Secret:    []byte(cfg.CallbackSecret),
		AccountID: cfg.DinteroAccountID,
		Namespace: cfg.Namespace,
		PublicURL: cfg.CallbackURL,
		Logger:    log.With("component", "callbacks"),
		Metrics:   metrics,
	})
	if err == nil {
		cbMux := http.NewServeMux()
		cbMux.Handle(worker.CallbackPath, cb)
		err = listen(&servers, cfg.CallbackAddr, "PAYWORKER_CALLBACK_ADDR", cbMux, log)
	}
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// listen serves h on addr, with the server bounds, and appends the server.
func listen(servers *[]*http.Server, addr, setting string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", setting, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: httpReadTimeout,
		WriteTimeout: httpWriteTimeout, IdleTimeout: httpIdleTimeout, MaxHeaderBytes: httpMaxHeader}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	*servers = append(*servers, srv)
	return nil
}

// endpoints serves /metrics, /healthz (the process is alive) and /readyz
// (every dependency answering), and with withPProf the net/http/pprof
// handlers under /debug/pprof/ (PAYWORKER_PPROF=true; off by default:
// profiles expose internals).
func endpoints(reg *prometheus.Registry, deps []dependency, withPProf bool) *http.ServeMux {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "payworker_ready",
		Help: "1 when NATS is connected, the consumer bound, Redis answering and a Dintero token at hand.",
	}, func() float64 {
		if len(problems(context.Background(), deps)) > 0 {
			return 0
		}
		return 1
	}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		if p := problems(r.Context(), deps); len(p) > 0 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			for _, line := range p {
				fmt.Fprintln(rw, line)
			}
			return
		}
		fmt.Fprintln(rw, "ready")
	})
	if withPProf {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// buildInfo is payworker_build_info: 1, labelled with the version, the VCS
// revision and the Go version, so that a dashboard shows what runs and an
// alert can see that nothing does.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "payworker_build_info",
		Help: "Always 1; the labels say which payworker runs.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(build.Version, build.Revision, build.GoVersion).Set(1)
	return g
}
