// guest/vm/qmp: the client against a scripted peer on a socketpair (QEMU's
// side of the protocol: greeting, replies, errors, events, an fd passed with
// getfd). The real QEMU is exercised by the snapshot VM test.
#include "guest/vm/qmp.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

using namespace ktstr;
using nlohmann::json;

namespace {

// The peer: reads one command line at a time and answers from a script.
struct Peer {
  int fd;
  std::string in;

  std::string read_line() {
    char buf[512];
    while (in.find('\n') == std::string::npos) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return "";
      in.append(buf, static_cast<size_t>(n));
    }
    std::string line = in.substr(0, in.find('\n'));
    in.erase(0, line.size() + 1);
    return line;
  }

  // Read one command with the fd that came with it (or -1).
  std::pair<json, int> read_command_with_fd() {
    char buf[512];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &msg, 0);
    int passed = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_type == SCM_RIGHTS) std::memcpy(&passed, CMSG_DATA(c), sizeof(int));
    in.append(buf, n > 0 ? static_cast<size_t>(n) : 0);
    return {json::parse(read_line()), passed};
  }

  void write(const std::string& s) { ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size())); }
};

struct Pair {
  int host = -1, peer = -1;
  Pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    host = fds[0];
    peer = fds[1];
    ::fcntl(host, F_SETFL, O_NONBLOCK);
  }
  ~Pair() { ::close(peer); }
};

auto soon() { return QmpClient::Clock::now() + std::chrono::seconds(10); }

constexpr const char* kGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}})"
    "\r\n";

TEST(Qmp, HandshakeCommandsErrorsAndEvents) {
  Pair p;
  QmpClient client(p.host);
  std::thread peer([fd = p.peer] {
    Peer q{fd};
    q.write(kGreeting);
    EXPECT_EQ(json::parse(q.read_line())["execute"], "qmp_capabilities");
    q.write("{\"return\": {}}\r\n");
    json stop = json::parse(q.read_line());
    EXPECT_EQ(stop["execute"], "stop");
    EXPECT_FALSE(stop.contains("arguments"));
    // An event before the reply: kept for later, the reply still found.
    q.write(R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"})" "\r\n");
    q.write("{\"return\": {}}\r\n");
    json bad = json::parse(q.read_line());
    EXPECT_EQ(bad["arguments"]["uri"], "fd:nope");
    q.write(R"({"error": {"class": "GenericError", "desc": "File descriptor named 'nope' not found"}})" "\r\n");
    q.write(R"({"event": "MIGRATION", "data": {"status": "setup"}})" "\r\n"
            R"({"event": "MIGRATION", "data": {"status": "completed"}})" "\r\n");
  });
  ASSERT_TRUE(client.handshake(soon()));
  auto stopped = client.execute("stop", json::object(), soon());
  ASSERT_TRUE(stopped) << stopped.error().msg;
  EXPECT_TRUE(stopped->empty());
  auto refused = client.execute("migrate", {{"uri", "fd:nope"}}, soon());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().msg.find("QEMU refused 'migrate': File descriptor named 'nope' not found"),
            std::string::npos);
  auto done = client.wait_event("MIGRATION", [](const json& d) { return d.value("status", "") == "completed"; },
                                soon());
  ASSERT_TRUE(done) << done.error().msg;
  EXPECT_EQ((*done)["status"], "completed");
  peer.join();
}

TEST(Qmp, GetfdCarriesTheDescriptor) {
  Pair p;
  QmpClient client(p.host);
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  std::thread peer([fd = p.peer, write_end = pipefd[1]] {
    Peer q{fd};
    auto [cmd, passed] = q.read_command_with_fd();
    EXPECT_EQ(cmd["execute"], "getfd");
    EXPECT_EQ(cmd["arguments"]["fdname"], "snap");
    ASSERT_GE(passed, 0);
    // The descriptor is the same pipe: what we write through it arrives.
    EXPECT_EQ(::write(passed, "ok", 2), 2);
    ::close(passed);
    q.write("{\"return\": {}}\n");
    (void)write_end;
  });
  auto got = client.execute("getfd", {{"fdname", "snap"}}, soon(), pipefd[1]);
  ASSERT_TRUE(got) << got.error().msg;
  peer.join();
  ::close(pipefd[1]);
  char buf[4] = {};
  EXPECT_EQ(::read(pipefd[0], buf, sizeof buf), 2);
  EXPECT_STREQ(buf, "ok");
  ::close(pipefd[0]);
}

TEST(Qmp, ClosedConnectionAndSilenceAreErrors) {
  {
    Pair p;
    QmpClient client(p.host);
    ::shutdown(p.peer, SHUT_RDWR);
    auto r = client.handshake(soon());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().msg.find("closed its QMP connection"), std::string::npos) << r.error().msg;
  }
  {
    Pair p;
    QmpClient client(p.host);
    auto r = client.handshake(QmpClient::Clock::now() + std::chrono::milliseconds(50));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().msg.find("in time"), std::string::npos) << r.error().msg;
  }
  {
    Pair p;
    QmpClient client(p.host);
    Peer q{p.peer};
    q.write("not json\n");
    EXPECT_FALSE(client.handshake(soon()));
  }
}

TEST(Qmp, ReadAvailableSortsEventsWithoutWaiting) {
  Pair p;
  QmpClient client(p.host);
  EXPECT_TRUE(client.read_available());  // nothing yet, still open
  Peer q{p.peer};
  q.write(R"({"event": "VSERPORT_CHANGE", "data": {"id": "vport0", "open": true}})" "\r\n");
  EXPECT_TRUE(client.read_available());
  auto events = client.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["data"]["id"], "vport0");
  ::close(p.peer);
  p.peer = ::open("/dev/null", O_RDONLY);
  EXPECT_FALSE(client.read_available());
}

}  // namespace
