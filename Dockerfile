# tenantry container image: a static binary on distroless, running as a
# non-root user. Build with BuildKit (the default in current Docker):
#
#   docker build -t tenantry .
#
# There is no `# syntax=` line on purpose: it makes BuildKit fetch a frontend
# image from a registry before it can even parse this file. The built-in
# frontend handles everything used here, cache mounts included.
#
# The base images are build arguments that default to the official images.
# A machine without a registry builds stand-ins from Debian's packages
# (.ci/images.sh) and passes them:
#
#   docker build --build-arg GO_IMAGE=tenantry-local/golang:1.26.8-bookworm \
#     --build-arg RUNTIME_IMAGE=tenantry-local/static:nonroot -t tenantry .
#
# The release process should pin both base images by digest as well
# (image:tag@sha256:...); the tags below are the human-readable pins, and
# docker_test.go checks they stay pinned and match go.mod's toolchain.
#
# Nothing secret is baked in: JWT_SECRET (or JWT_PUBLIC_KEY_FILE) and
# DATABASE_URL come from the runtime environment.

ARG GO_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src

# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tenantry .

# distroless/static: CA certificates and tzdata, no shell, no package manager.
FROM ${RUNTIME_IMAGE}

ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tenantry" \
      org.opencontainers.image.description="Multi-tenant REST service: one PostgreSQL schema per tenant" \
      org.opencontainers.image.source="https://github.com/tenantry/tenantry" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

COPY --from=build /out/tenantry /tenantry

# The image's default user already is nonroot (65532); say so explicitly.
USER nonroot:nonroot

ENV ADDR=:8080
EXPOSE 8080

# No shell or curl in the image: the binary probes its own /healthz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/tenantry", "healthcheck"]

# Exec form: the binary is PID 1 and gets docker stop's SIGTERM, which starts
# its drain (up to 25 s; give the container a longer stop timeout than
# Docker's default 10 s).
ENTRYPOINT ["/tenantry"]
CMD ["serve"]
