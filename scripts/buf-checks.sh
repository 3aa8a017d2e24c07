#!/usr/bin/env bash
# Runs `buf lint` on proto/ and `buf breaking` against the previous state of
# proto/:
#   - on branch main: against HEAD~1 (the commit before the current one),
#   - on any other branch or a detached HEAD: against the local branch main.
# Breaking checks are skipped, with a note, when there is nothing to compare
# against (first commit, shallow clone, no local main, base without proto/).
# Set BUF_BREAKING_AGAINST to a buf input (e.g. '.git#branch=release,subdir=proto')
# to override the base. Works from any directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$root/tools/install.sh"
export PATH="$root/.cache/bin:$PATH"
export BUF_CACHE_DIR="$root/.cache/buf"
cd "$root"

echo "buf lint proto" >&2
buf lint proto

# has_proto REV: REV resolves to a commit that contains proto/buf.yaml.
has_proto() {
  git rev-parse --verify --quiet "$1^{commit}" >/dev/null &&
    git cat-file -e "$1:proto/buf.yaml" 2>/dev/null
}

against="${BUF_BREAKING_AGAINST:-}"
if [[ -z "$against" ]]; then
  branch="$(git rev-parse --abbrev-ref HEAD)"
  if [[ "$branch" == "main" ]]; then
    if has_proto HEAD~1; then
      against=".git#ref=HEAD~1,subdir=proto"
    else
      reason="HEAD~1 does not exist or has no proto/"
      if [[ "$(git rev-parse --is-shallow-repository)" == "true" ]]; then
        reason="shallow clone without HEAD~1; fetch more history to enable it"
      fi
      echo "note: skipping buf breaking: on main and $reason" >&2
    fi
  else
    if has_proto refs/heads/main; then
      against=".git#branch=main,subdir=proto"
    else
      echo "note: skipping buf breaking: no local branch main with proto/ to compare against (on '$branch')" >&2
    fi
  fi
fi

if [[ -n "$against" ]]; then
  echo "buf breaking proto --against '$against'" >&2
  buf breaking proto --against "$against"
fi
echo "buf checks passed" >&2
