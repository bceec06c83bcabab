/* PID 1 for the bare-boot baseline: power off at once. */
#include <sys/reboot.h>
#include <unistd.h>

int main(void) {
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}
