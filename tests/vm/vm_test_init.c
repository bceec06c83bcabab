/* PID 1 for tests/vm/test_vm_boot.cpp, linked -static. Its mode is the first
 * line of /mode in the initramfs:
 *   echo  - write "hello" to port ktstr.test.out, echo one line read from
 *           ktstr.test.in back as "echo:<line>", report the topology, power off
 *   hang  - write "ready" to ktstr.test.out, then nothing, and never exit
 *           (the host watchdog must fire)
 *   exit  - return from PID 1, which panics the kernel
 *   tick  - like echo, but after opening ktstr.test.in write "tick N" five
 *           times, 100 ms apart (a restored guest's timers must run) */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void power_off(void) {
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

static void read_small(const char *path, char *buf, size_t cap) {
  buf[0] = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  if (n < 0) n = 0;
  buf[n] = 0;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
}

/* Ports appear as /dev/vportNpM; their names are in /sys/class/virtio-ports. */
static int open_port(const char *name, int flags) {
  for (int attempt = 0; attempt < 500; ++attempt) {
    DIR *d = opendir("/sys/class/virtio-ports");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char path[512], found[256];
      snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
      read_small(path, found, sizeof found);
      if (strcmp(found, name) != 0) continue;
      snprintf(path, sizeof path, "/dev/%s", e->d_name);
      int fd = open(path, flags);
      if (fd >= 0) {
        closedir(d);
        return fd;
      }
    }
    if (d) closedir(d);
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return -1;
}

static void write_all(int fd, const char *s) {
  size_t len = strlen(s);
  while (len > 0) {
    ssize_t n = write(fd, s, len);
    if (n <= 0) return;
    s += n;
    len -= (size_t)n;
  }
}

static void report_topology(int out) {
  char path[256], value[256], line[600];
  for (int node = 0; node < 64; ++node) {
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", node);
    if (access(path, R_OK) != 0) continue;
    read_small(path, value, sizeof value);
    snprintf(line, sizeof line, "node%d %s\n", node, value);
    write_all(out, line);
  }
  for (int cpu = 0; cpu < 128; ++cpu) {
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index3/shared_cpu_list", cpu);
    if (access(path, R_OK) != 0) continue;
    read_small(path, value, sizeof value);
    snprintf(line, sizeof line, "llc%d %s\n", cpu, value);
    write_all(out, line);
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", cpu);
    read_small(path, value, sizeof value);
    snprintf(line, sizeof line, "smt%d %s\n", cpu, value);
    write_all(out, line);
  }
}

int main(void) {
  mkdir("/sys", 0755);
  mkdir("/dev", 0755);
  mount("sysfs", "/sys", "sysfs", 0, NULL);
  mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  char mode[64];
  read_small("/mode", mode, sizeof mode);

  int out = open_port("ktstr.test.out", O_WRONLY);
  if (out < 0) {
    fprintf(stderr, "vm_test_init: no port ktstr.test.out: %s\n", strerror(errno));
    power_off();
  }
  if (strcmp(mode, "exit") == 0) return 1;
  if (strcmp(mode, "hang") == 0) {
    write_all(out, "ready\n");
    for (;;) pause();
  }
  write_all(out, "hello from the guest\n");
  report_topology(out);
  int in = open_port("ktstr.test.in", O_RDONLY);
  if (strcmp(mode, "tick") == 0) {
    for (int i = 1; i <= 5; ++i) {
      struct timespec ts = {0, 100 * 1000 * 1000};
      nanosleep(&ts, NULL);
      char tick[32];
      snprintf(tick, sizeof tick, "tick %d\n", i);
      write_all(out, tick);
    }
  }
  char line[256];
  size_t len = 0;
  while (in >= 0 && len < sizeof line - 1) {
    ssize_t n = read(in, line + len, 1);
    if (n <= 0 || line[len] == '\n') break;
    ++len;
  }
  line[len] = 0;
  char reply[300];
  snprintf(reply, sizeof reply, "echo:%s\n", line);
  write_all(out, reply);
  /* The kernel log line the host looks for in console.txt. */
  int kmsg = open("/dev/kmsg", O_WRONLY);
  if (kmsg >= 0) write_all(kmsg, "<2>vm_test_init: done\n");
  power_off();
  return 0;
}
