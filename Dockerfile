# syntax=docker/dockerfile:1
#
# The btest server in a container: a static binary on an empty image.
#
#   docker build -t btest --build-arg VERSION=v1.2.3 --build-arg REVISION=$(git rev-parse HEAD) .
#   sudo install -D -m 0400 -o 65532 -g 65532 /dev/stdin /srv/btest/password <<<'long secret'
#   docker run --rm --network host -v /srv/btest/password:/run/secrets/btest:ro \
#     btest --server --user btest --password-file /run/secrets/btest
#
# The password file is mounted from the host (the image has nothing but the
# binary) and must be readable by uid 65532, the image's user. Without
# arguments the image runs `btest --server`: a server without
# authentication, which anyone who reaches it can test against.
#
# Host networking, because a UDP test uses a port range (2001-2999 by
# default) that the server picks from per test, and sends test data back to
# the client's port + 256: publishing a thousand ports through docker-proxy
# is slow and NAT hides the client's address from --allow/--deny and the
# logs. See README.md, "Install".

ARG GO_VERSION=1.26

# Build on the machine's own platform and cross-compile: no emulation needed.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS TARGETARCH TARGETVARIANT
ARG VERSION="(devel)"
ARG REVISION=""
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOARM=${TARGETVARIANT#v} \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/btest-go/btest/internal/version.version=${VERSION} -X github.com/btest-go/btest/internal/version.revision=${REVISION}" \
      -o /out/btest ./cmd/btest

# What FROM scratch gives the server: nothing but the binary. It needs no
# libc, no CA certificates, no /etc/passwd (numeric user), no shell; the
# release tests run the same binary as uid 65532 in an empty root directory.
FROM scratch
ARG VERSION="(devel)"
ARG REVISION=""
LABEL org.opencontainers.image.title="btest" \
      org.opencontainers.image.description="MikroTik Bandwidth Test server and client (btest-go)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/btest-go/btest" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /out/btest /btest
USER 65532:65532
EXPOSE 2000/tcp 2001-2999/udp
ENTRYPOINT ["/btest"]
CMD ["--server"]
