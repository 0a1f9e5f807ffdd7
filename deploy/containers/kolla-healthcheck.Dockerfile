# Snippet for a kolla / TCIB service image: install the probe binary from the probe image and
# keep the Kolla helper names (healthcheck_curl, healthcheck_port, ...) working as symlinks to
# it (the binary dispatches on argv[0]). Applied here to the Debian glance-api image
# (scripts/build-images kolla-glance-api); for a Kolla image pass e.g.
# --build-arg SERVICE_IMAGE=quay.io/podified-antelope-centos9/openstack-glance-api:current-podified
ARG PROBE_IMAGE=ghcr.io/openstack-healthcheck/probe:0.1.0
ARG SERVICE_IMAGE=localhost/openstack-healthcheck/glance-api:0.1.0
FROM ${PROBE_IMAGE} AS probe

FROM ${SERVICE_IMAGE}
USER root
COPY --from=probe /openstack/healthcheck /openstack/healthcheck
RUN ["/openstack/healthcheck", "install-compat", "/usr/local/bin"]
USER glance
# kolla-ansible's glance_api healthcheck, unchanged: `healthcheck_curl http://<addr>:9292`.
HEALTHCHECK --interval=30s --timeout=30s --start-period=5s --retries=3 \
    CMD ["healthcheck_curl", "http://127.0.0.1:9292"]
