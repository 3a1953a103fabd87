#!/bin/sh
set -eu
echo "$GREETING (action $GANTRY_ACTION, change $GANTRY_CHANGE_ID)"
cat ~/motd.txt
echo "servers known so far: $(cat "$GANTRY_PROPERTIES_DIR/merged.json")"
