# shellcheck shell=sh
# Sends the signal given as $1 (STOP, CONT) to every Apache process of the container it runs in
# but PID 1: the workers and the WSGI daemon that answer keystone's requests. A signal sent from
# inside a PID namespace never reaches its init; the probe's own processes are left running, so
# that the kubelet gets their message. For a hung keystone on purpose:
#   kubectl exec deploy/keystone -- sh -c "$(cat deploy/examples/signal-apache.sh)" sh STOP
for dir in /proc/[0-9]*; do
  pid=${dir#/proc/}
  [ "$pid" = 1 ] || [ "$pid" = $$ ] && continue
  read -r name <"$dir/comm" 2>/dev/null || continue
  case $name in
    apache2 | keystone*) kill -"$1" "$pid" ;;
  esac
done
