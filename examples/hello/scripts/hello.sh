#!/bin/sh
set -eu
echo "$GREETING (action $GANTRY_ACTION, change $GANTRY_CHANGE_ID)"
cat ~/motd.txt
echo "the merged properties this step received:"
cat "$GANTRY_PROPERTIES_DIR/merged.json"
