# Usage (root): unshare --mount --propagation private -- sh without-program.sh STASH PROGRAM -- COMMAND [ARG...]
# Runs COMMAND where PROGRAM cannot be found, without changing the host: in this private mount namespace
# each folder holding PROGRAM (on PATH, or /usr/sbin and /sbin, where VmTools also looks) is covered by a
# tmpfs that shows every other entry there (a symlink into the folder's bind mount under STASH, an empty
# folder the caller owns). Symlinks are copied as they are, so relative ones resolve as before. The
# mounts end with the namespace; outside it STASH stays empty and the folders untouched.
# Used by tests/Shared/WithoutProgram.cs and tests/Pester/RealComponents.psm1 (Invoke-PwshWithoutProgram).
set -eu
stash=$1 program=$2
shift 2
[ "$1" = "--" ] && shift
mount -t tmpfs -o mode=0700 vmtools-stash "$stash"
covered=" "
for dir in $(printf '%s' "$PATH:/usr/sbin:/sbin" | tr ':' ' '); do
  [ -e "$dir/$program" ] || [ -L "$dir/$program" ] || continue
  real=$(realpath "$dir")
  case "$covered" in *" $real "*) continue ;; esac
  covered="$covered$real "
  copy="$stash/$(printf '%s' "$real" | tr '/' '_')"
  mkdir "$copy"
  mount --bind "$real" "$copy"
  mount -t tmpfs -o mode=0755 vmtools-without-program "$real"
  for entry in "$copy"/* "$copy"/.[!.]*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    name=${entry##*/}
    [ "$name" = "$program" ] && continue
    if [ -L "$entry" ]; then ln -s "$(readlink "$entry")" "$real/$name"; else ln -s "$entry" "$real/$name"; fi
  done
done
for dir in $(printf '%s' "$PATH:/usr/sbin:/sbin" | tr ':' ' '); do
  if [ -e "$dir/$program" ]; then echo "without-program.sh: '$dir/$program' is still there" >&2; exit 97; fi
done
exec "$@"
