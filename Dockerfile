# syntax=docker/dockerfile:1
# Samplit in a container: a static binary (pure Go, CGO off) on a distroless
# base, run as a non-root user, with the SQLite default under the /data
# volume. With PostgreSQL, see docker-compose.yml.
#
#   docker build -t samplit .
#   docker run -p 8080:8080 -v samplit-data:/data samplit
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" -o /out/samplit ./cmd/samplit \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/samplit /samplit
# The nonroot user (65532) owns /data, so the database and the generated
# state key file can be written there.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME /data
ENV SAMPLIT_ADDR=0.0.0.0:8080 \
    SAMPLIT_DATABASE_URL=/data/samplit.db \
    SAMPLIT_LOG_FORMAT=json
EXPOSE 8080
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/samplit", "healthcheck"]
ENTRYPOINT ["/samplit"]
CMD ["serve"]
