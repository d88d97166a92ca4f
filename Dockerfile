# syntax=docker/dockerfile:1
#
# One image with the three binaries: payworker (the entrypoint), payctl and
# dintero-sandbox. Build it with
#
#   docker build -t payworker .            (VERSION from git describe)
#   docker build --build-arg VERSION=v1.2.3 -t payworker:v1.2.3 .

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# VERSION is stamped as main.version (default: git describe of the context's
# .git). The go command records the VCS revision (go version -m shows
# vcs.revision) when the context holds a usable .git directory: a clone, not
# a git worktree (whose .git is a file pointing outside the context) or an
# exported tarball; then the binaries are built without VCS information and
# the build says so.
ARG VERSION=
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -e; \
    vcs=auto; \
    if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then \
      vcs=false; echo "no usable .git in the build context: the binaries carry no vcs.revision" >&2; \
    fi; \
    version="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"; \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=$vcs -ldflags "-s -w -X main.version=${version}" \
      -o /out/ ./cmd/payworker ./cmd/payctl ./cmd/dintero-sandbox

# static-debian12 carries CA certificates (for https://checkout.dintero.com)
# and tzdata; the nonroot tag runs as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/payworker /out/payctl /out/dintero-sandbox /usr/local/bin/
USER nonroot:nonroot
# /metrics, /healthz and /readyz (PAYWORKER_HTTP_ADDR, default :8080).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/payworker"]
