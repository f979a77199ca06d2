#!/usr/bin/env bash
# What merging a pull request of the config repository will roll out, as one Markdown comment.
#
# Runs `serin validate` on the manifests of the head commit and `serin plan` from the base to
# the head, and writes both as one comment. With --post PR (in GitHub Actions) it posts the
# comment on the pull request, replacing the one an earlier run posted; without, it prints it.
# Exits 1 when either found an error (so the check fails the pull request), 2 when it could
# not run.
#
# Run it in a checkout of the config repository that has both commits (a full clone, or
# `actions/checkout` with `fetch-depth: 0`):
#
#   plan-comment.sh [--base REV] [--head REV] [--path DIR] [--repo DIR] [--out FILE] [--post PR]
#
#   --base   the commit the change starts from      (default: origin/main)
#   --head   the commit of the change               (default: HEAD)
#   --path   the folder of manifests, as `serin run --path` (default: the whole repository)
#   --repo   the checkout                           (default: .)
#   --out    also write the comment to this file
#   --post   the pull request's number: post the comment with the GitHub CLI (`gh`), which
#            needs GH_TOKEN and GITHUB_REPOSITORY (GitHub Actions sets the latter)
#
# SERIN names the binary (default: `serin` on PATH).
set -euo pipefail

SERIN="${SERIN:-serin}"
BASE=origin/main HEAD_REV=HEAD MANIFESTS="" REPO=. OUT="" POST=""
usage() { sed -n '2,/^set -e/p' "$0" | sed -e '/^set -e/d' -e 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
	case "$1" in
	--base) BASE=$2 ;;
	--head) HEAD_REV=$2 ;;
	--path) MANIFESTS=$2 ;;
	--repo) REPO=$2 ;;
	--out) OUT=$2 ;;
	--post) POST=$2 ;;
	-h | --help) usage ;;
	*) echo "plan-comment.sh: unknown argument $1" >&2; usage ;;
	esac
	(($# >= 2)) || { echo "plan-comment.sh: $1 needs a value" >&2; exit 2; }
	shift 2
done
command -v "$SERIN" >/dev/null || { echo "plan-comment.sh: $SERIN not found (set SERIN)" >&2; exit 2; }
REPO=$(git -C "$REPO" rev-parse --show-toplevel)
head_sha=$(git -C "$REPO" rev-parse --verify --quiet "$HEAD_REV^{commit}") ||
	{ echo "plan-comment.sh: --head $HEAD_REV is not a commit of $REPO" >&2; exit 2; }
git -C "$REPO" rev-parse --verify --quiet "$BASE^{commit}" >/dev/null ||
	{ echo "plan-comment.sh: --base $BASE is not a commit of $REPO (a shallow clone? fetch it)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
path_args=()
[[ -n "$MANIFESTS" ]] && path_args=(--path "$MANIFESTS")

# serin validate: the head commit's own tree, whatever the work tree holds.
mkdir "$work/head"
git -C "$REPO" archive --format=tar "$head_sha" | tar -x -C "$work/head"
validate_rc=0
(cd "$work/head" && "$SERIN" validate . "${path_args[@]}") >"$work/validate.txt" 2>&1 || validate_rc=$?

# serin plan: what the merge rolls out, and why.
plan_rc=0
"$SERIN" plan --repo "$REPO" --base "$BASE" --head "$HEAD_REV" "${path_args[@]}" \
	>"$work/plan.md" 2>"$work/plan.err" || plan_rc=$?

marker='<!-- serin plan-comment -->'
{
	echo "$marker"
	if ((plan_rc == 0 || plan_rc == 1)) && [[ -s "$work/plan.md" ]]; then
		cat "$work/plan.md"
	else
		printf '## Serin plan\n\n`serin plan` could not run (exit %s):\n\n```text\n' "$plan_rc"
		cat "$work/plan.err" "$work/plan.md"
		printf '```\n'
	fi
	echo
	if ((validate_rc == 0)); then
		printf '<details><summary><code>serin validate</code>: %s</summary>\n\n```text\n' \
			"$(tail -n 1 "$work/validate.txt" | sed 's/^\.: //')"
	else
		printf '<details open><summary><code>serin validate</code> failed (exit %s)</summary>\n\n```text\n' \
			"$validate_rc"
	fi
	cat "$work/validate.txt"
	printf '```\n\n</details>\n'
} >"$work/comment.md"

# A comment holds at most 65,536 characters.
if (($(wc -c <"$work/comment.md") > 60000)); then
	head -c 60000 "$work/comment.md" >"$work/cut.md"
	printf '\n\n… cut at 60,000 characters: the whole plan is in the log of this check.\n' >>"$work/cut.md"
	cat "$work/comment.md" >&2
	mv "$work/cut.md" "$work/comment.md"
fi

[[ -n "$OUT" ]] && cp "$work/comment.md" "$OUT"
[[ -n "${GITHUB_STEP_SUMMARY:-}" ]] && cat "$work/comment.md" >>"$GITHUB_STEP_SUMMARY"

if [[ -n "$POST" ]]; then
	: "${GITHUB_REPOSITORY:?--post needs GITHUB_REPOSITORY (owner/name)}"
	# Replace this script's earlier comment, so the pull request shows one, current plan.
	id=$(gh api --paginate "repos/$GITHUB_REPOSITORY/issues/$POST/comments" \
		--jq ".[] | select(.body | startswith(\"$marker\")) | .id" | tail -n 1)
	if [[ -n "$id" ]]; then
		gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$id" \
			-F body=@"$work/comment.md" >/dev/null
		echo "plan-comment.sh: updated comment $id on pull request #$POST" >&2
	else
		gh api --method POST "repos/$GITHUB_REPOSITORY/issues/$POST/comments" \
			-F body=@"$work/comment.md" >/dev/null
		echo "plan-comment.sh: commented on pull request #$POST" >&2
	fi
	cat "$work/comment.md"
else
	cat "$work/comment.md"
fi

if ((plan_rc > 1 || validate_rc > 1)); then exit 2; fi
if ((plan_rc == 1 || validate_rc == 1)); then exit 1; fi
