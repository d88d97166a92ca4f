# syntax=docker/dockerfile:1
#
# One image with the three binaries: payworker (the entrypoint), payctl and
# dintero-sandbox. Build it with
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t payworker .

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/ ./cmd/payworker ./cmd/payctl ./cmd/dintero-sandbox

# static-debian12 carries CA certificates (for https://checkout.dintero.com)
# and tzdata; the nonroot tag runs as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/payworker /out/payctl /out/dintero-sandbox /usr/local/bin/
USER nonroot:nonroot
# /metrics, /healthz and /readyz (PAYWORKER_HTTP_ADDR, default :8080).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/payworker"]
