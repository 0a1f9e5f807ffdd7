# Snippet for a kolla / TCIB service image: install the probe binary from the probe image and
# keep the Kolla helper names (healthcheck_curl, healthcheck_port, ...) working as symlinks to
# it (the binary dispatches on argv[0]).
ARG PROBE_IMAGE=ghcr.io/openstack-healthcheck/probe:0.1.0
FROM ${PROBE_IMAGE} AS probe

FROM quay.io/podified-antelope-centos9/openstack-nova-api:current-podified
USER root
COPY --from=probe /openstack/healthcheck /openstack/healthcheck
RUN /openstack/healthcheck install-compat /usr/local/bin
USER nova
HEALTHCHECK --interval=30s --timeout=30s --start-period=5s --retries=3 \
    CMD ["/openstack/healthcheck", "--timeout", "27", "profile", "nova-api"]
