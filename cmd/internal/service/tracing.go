package service

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/payworker/payworker/worker"
)

// tracingOn reports whether the standard OpenTelemetry variables ask for
// traces to be exported: an OTLP endpoint is set and the SDK not disabled.
func tracingOn(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// startTracing installs the process's OpenTelemetry tracer provider, which
// exports spans over OTLP/HTTP as the standard OTEL_* variables configure
// it (endpoint, headers, timeout, sampler, service name and resource
// attributes), and the W3C propagators. It returns the provider's
// shutdown, which flushes what is buffered.
func startTracing(ctx context.Context, log *slog.Logger) (func(context.Context) error, error) {
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "payworker"), attribute.String("service.version", Version())),
		resource.WithFromEnv())
	if err != nil {
		log.Warn("OpenTelemetry resource", "err", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(worker.DefaultPropagator())
	log.Info("exporting traces over OTLP")
	return tp.Shutdown, nil
}
