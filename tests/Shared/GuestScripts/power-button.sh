# Sourced by the init of every test guest (FlightVmGuest.cs, SshGuest.cs and RealComponents.psm1 add it
# as /etc/power-button.sh): an ACPI power-button press (QMP system_powerdown) prints POWER-BUTTON and
# powers the guest off, so a graceful stop is real. Needs the button and evdev modules loaded.
# The power button's event node appears asynchronously (devtmpfs) after its driver binds, on a slow host
# after the keyboard's: wait for it and listen there, never just on whatever exists yet.
buttons=""
for i in $(seq 1 150); do
  for e in /sys/class/input/event*; do
    grep -qs "Power Button" "$e/device/name" && [ -c "/dev/input/${e##*/}" ] && buttons="$buttons /dev/input/${e##*/}"
  done
  [ -n "$buttons" ] && break
  sleep 0.2
done
[ -n "$buttons" ] || echo POWER-BUTTON-NOT-FOUND
for ev in $buttons; do
  ( dd if=$ev of=/dev/null bs=24 count=1 2>/dev/null; echo POWER-BUTTON; sync; poweroff -f ) &
done
