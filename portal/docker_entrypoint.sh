#!/bin/sh
# Entrypoint of the Goldsmith image: the first argument picks what this container runs.
#   web        apply migrations (unless GOLDSMITH_MIGRATE=0), then gunicorn on 0.0.0.0:$PORT (8000)
#   worker     an RQ worker for the builds and default queues, with RQ's scheduler for delayed jobs
#   scheduler  the periodic jobs of builds/cron.py; run exactly one per deployment
#   emulator   the Azure emulator on 0.0.0.0:8443, its state and CA under $GOLDSMITH_VAR_DIR/emulator
#   manage     any manage.py command, e.g. `manage createsuperuser`
# Arguments after the role go to the command, e.g. `worker --burst`.
set -eu
cd "$(dirname "$0")/.."

role="${1:-web}"
if [ "$#" -gt 0 ]; then shift; fi

case "$role" in
    web)
        if [ "${GOLDSMITH_MIGRATE:-1}" != "0" ]; then
            python manage.py migrate --noinput
        fi
        # gunicorn reads both itself: PORT sets the bind address, WEB_CONCURRENCY the workers.
        export PORT="${PORT:-8000}" WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}"
        exec gunicorn portal.wsgi --access-logfile - "$@"
        ;;
    worker)
        exec python manage.py rqworker builds default --with-scheduler "$@"
        ;;
    scheduler)
        exec python manage.py rqcron builds.cron "$@"
        ;;
    emulator)
        exec python -m emulator --host 0.0.0.0 --port 8443 --data-dir "${GOLDSMITH_VAR_DIR:-/app/var}/emulator" "$@"
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    *)
        echo "usage: docker_entrypoint.sh web|worker|scheduler|emulator|manage [arguments...]" >&2
        exit 64
        ;;
esac
