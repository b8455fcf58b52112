#!/usr/bin/env bash
# The rooms and what each may include (README "Development", the include
# column): fails when a product file includes a header of a room its row does
# not allow, or when two rooms include each other. Run by ctest
# (check.includes); usage: check-includes.sh [REPO_DIR].
#
# A room is a folder (common, config, proxy, auth/<part>); main.c, the
# composition root, may include every room. "Loop services" are the proxy
# headers every auth room may use; the handler API (proxy/req.h) is for the
# AS and the guard only.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

loop="proxy/log.h proxy/metrics.h proxy/fetch.h proxy/netguard.h"
declare -A allow=(
	[common]="common"
	[config]="common config"
	[proxy]="common config proxy"
	[auth/crypto]="common auth/crypto"
	[auth/client]="common config auth/crypto auth/client"
	[auth/store]="common config auth/client auth/store $loop"
	[auth/cimd]="common config auth/crypto auth/client auth/cimd $loop"
	[auth/registry]="common config auth/crypto auth/client auth/store auth/cimd auth/registry $loop"
	[auth/idp]="common config auth/crypto auth/store auth/idp $loop"
	[auth/as]="common config auth/crypto auth/client auth/store auth/cimd auth/registry auth/idp auth/as proxy/req.h $loop"
	[auth/guard]="common config auth/crypto auth/store auth/idp auth/guard proxy/req.h $loop"
	[auth/policy]="common config auth/policy proxy/req.h $loop"
)

bad=0
declare -A edge=()
# room_of FILE: the room a product file or header belongs to (its folder).
room_of() { dirname "$1"; }

while IFS= read -r f; do
	[ "$f" = main.c ] && continue
	room=$(room_of "$f")
	rules=${allow[$room]:-}
	if [ -z "$rules" ]; then
		echo "$f: the folder $room is no room of the table in scripts/check-includes.sh" >&2
		bad=1
		continue
	fi
	while IFS=: read -r line inc; do
		[ -n "$inc" ] || continue
		iroom=$(room_of "$inc")
		ok=0
		for r in $rules; do
			if [ "$r" = "$iroom" ] || [ "$r" = "$inc" ]; then ok=1; break; fi
		done
		if [ $ok = 0 ]; then
			echo "$f:$line: includes \"$inc\": the room $room may include only: $rules" >&2
			bad=1
		fi
		[ "$iroom" != "$room" ] && edge["$room>$iroom"]="$f:$line"
	done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
		sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1:\2/')
done < <(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -Ev '^(test|docker|build[^/]*)/' | sort)

for e in "${!edge[@]}"; do
	a=${e%%>*} b=${e#*>}
	if [ -n "${edge[$b>$a]:-}" ] && [[ "$a" < "$b" ]]; then
		echo "rooms $a and $b include each other (${edge[$e]} and ${edge[$b>$a]})" >&2
		bad=1
	fi
done

if [ $bad = 0 ]; then
	echo "includes: every room includes only what its row allows"
fi
exit $bad
