#!/bin/sh
# The demo's blue/green stop, run by `shipdeck finish ENV` in the old slot's
# folder with SHIPDECK_SLOT naming it: stops that slot's app, and only it.
set -eu

case "${SHIPDECK_SLOT:-}" in
    blue | green) ;;
    *)
        echo "stop: SHIPDECK_SLOT=${SHIPDECK_SLOT:-} is neither blue nor green" >&2
        exit 1
        ;;
esac
exec "$SHIPDECK_DEPLOY_TO/releases/$SHIPDECK_RELEASE/bin/sample-app" --stop \
    --pid-file "$SHIPDECK_DEPLOY_TO/shared/app-$SHIPDECK_SLOT.pid"
