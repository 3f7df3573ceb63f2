#include "server/doctor/resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace authcode::doctor {
namespace {

// c-ares tries each question twice, the second time with twice the wait;
// a third of the whole timeout for the first try uses it all.
constexpr int kTries = 2;

struct Query {
  bool done = false;
  TxtAnswer answer = TxtAnswer::Timeout();
};

// The records of a successful answer, each one's strings joined.
TxtAnswer ParseTxt(const unsigned char* answer, int length) {
  ares_txt_ext* txt = nullptr;
  const int status = ares_parse_txt_reply_ext(answer, length, &txt);
  if (status == ARES_ENODATA) return TxtAnswer::NoData();
  if (status != ARES_SUCCESS) {
    return TxtAnswer::Error(
        absl::StrCat("a malformed answer: ", ares_strerror(status)));
  }
  std::vector<std::string> records;
  for (const ares_txt_ext* part = txt; part != nullptr; part = part->next) {
    if (part->record_start != 0 || records.empty()) records.emplace_back();
    records.back().append(reinterpret_cast<const char*>(part->txt),
                          part->length);
  }
  ares_free_data(txt);
  return TxtAnswer::Records(std::move(records));
}

void OnAnswer(void* arg, int status, int /*timeouts*/, unsigned char* answer,
              int length) {
  auto* query = static_cast<Query*>(arg);
  query->done = true;
  switch (status) {
    case ARES_SUCCESS:
      query->answer = ParseTxt(answer, length);
      return;
    case ARES_ENODATA:
      query->answer = TxtAnswer::NoData();
      return;
    case ARES_ENOTFOUND:
      query->answer = TxtAnswer::NxDomain();
      return;
    case ARES_ETIMEOUT:
    case ARES_ECANCELLED:  // Only at our deadline.
      query->answer = TxtAnswer::Timeout();
      return;
    case ARES_ESERVFAIL:
      query->answer = TxtAnswer::Error("the server failed (SERVFAIL)");
      return;
    case ARES_EREFUSED:
      query->answer = TxtAnswer::Error("the server refused it (REFUSED)");
      return;
    case ARES_ECONNREFUSED:
      query->answer = TxtAnswer::Error("the server refused the connection");
      return;
    default:
      query->answer = TxtAnswer::Error(ares_strerror(status));
  }
}

bool IsAddress(int family, absl::string_view text) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(family, std::string(text).c_str(), buffer) == 1;
}

// Whether `entry` is "ipv4", "ipv4:port", "ipv6" or "[ipv6]:port": what
// c-ares takes, checked here since it skips some entries it cannot read.
bool IsServer(absl::string_view entry) {
  absl::string_view host = entry;
  absl::string_view port;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) return false;
    port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!port.empty() && port.front() != ':') return false;
    if (!IsAddress(AF_INET6, host)) return false;
  } else if (IsAddress(AF_INET6, host)) {
    return true;
  } else if (const size_t colon = host.find(':');
             colon != absl::string_view::npos) {
    port = host.substr(colon);
    host = host.substr(0, colon);
    if (!IsAddress(AF_INET, host)) return false;
  } else {
    return IsAddress(AF_INET, host);
  }
  if (port.empty()) return true;
  int number = 0;
  return absl::SimpleAtoi(port.substr(1), &number) && number > 0 &&
         number <= 65535;
}

absl::Status LibraryInit() {
  static const int status = ares_library_init(ARES_LIB_INIT_ALL);
  if (status != ARES_SUCCESS) {
    return absl::InternalError(
        absl::StrCat("c-ares: cannot initialise: ", ares_strerror(status)));
  }
  return absl::OkStatus();
}

}  // namespace

struct Resolver::Channel {
  ~Channel() {
    if (channel != nullptr) ares_destroy(channel);
  }
  ares_channel channel = nullptr;
};

Resolver::Resolver(std::unique_ptr<Channel> channel, absl::Duration timeout)
    : channel_(std::move(channel)), timeout_(timeout) {}

Resolver::~Resolver() = default;

absl::StatusOr<std::unique_ptr<Resolver>> Resolver::Create(
    const Options& options) {
  if (absl::Status s = LibraryInit(); !s.ok()) return s;

  ares_options ares = {};
  ares.timeout = std::max(
      1, static_cast<int>(absl::ToInt64Milliseconds(options.timeout) / 3));
  ares.tries = kTries;
  // A SERVFAIL or REFUSED answer comes back as such; otherwise c-ares
  // moves on to the next server and, out of servers, reports only that
  // none answered.
  ares.flags = ARES_FLAG_NOCHECKRESP;
  auto channel = std::make_unique<Channel>();
  const int status =
      ares_init_options(&channel->channel, &ares,
                        ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS);
  if (status != ARES_SUCCESS) {
    return absl::InternalError(
        absl::StrCat("c-ares: cannot start: ", ares_strerror(status)));
  }
  const std::vector<absl::string_view> servers =
      absl::StrSplit(options.servers, ',', absl::SkipEmpty());
  if (!options.servers.empty() &&
      (!std::all_of(servers.begin(), servers.end(), IsServer) ||
       ares_set_servers_ports_csv(channel->channel, options.servers.c_str()) !=
           ARES_SUCCESS)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "resolver: cannot use \"", absl::CHexEscape(options.servers),
        "\"; give IP addresses as host[:port], comma-separated, IPv6 in "
        "brackets when a port follows ([::1]:53)"));
  }
  return std::unique_ptr<Resolver>(
      new Resolver(std::move(channel), options.timeout));
}

TxtAnswer Resolver::LookupTxt(const std::string& name) {
  ares_channel channel = channel_->channel;
  Query query;
  ares_query(channel, name.c_str(), ns_c_in, ns_t_txt, OnAnswer, &query);

  // Bounded by the deadline: each turn waits at most until it.
  const absl::Time deadline = absl::Now() + timeout_;
  while (!query.done) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      ares_cancel(channel);  // Calls OnAnswer with ARES_ECANCELLED.
      break;
    }

    ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
    const int bits = ares_getsock(channel, sockets, ARES_GETSOCK_MAXNUM);
    std::vector<pollfd> fds;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
      if (events != 0) fds.push_back({sockets[i], events, 0});
    }
    timeval most = absl::ToTimeval(left);
    timeval next = {};
    const timeval* wait = ares_timeout(channel, &most, &next);
    const int wait_ms =
        static_cast<int>(wait->tv_sec * 1000 + (wait->tv_usec + 999) / 1000);

    const int ready = poll(fds.data(), fds.size(), wait_ms);
    if (ready < 0 && errno != EINTR) {
      const std::string error = std::strerror(errno);
      ares_cancel(channel);
      return TxtAnswer::Error(absl::StrCat("poll: ", error));
    }
    if (ready <= 0) {
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      continue;
    }
    for (const pollfd& fd : fds) {
      const bool readable = (fd.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
      const bool writable = (fd.revents & POLLOUT) != 0;
      ares_process_fd(channel, readable ? fd.fd : ARES_SOCKET_BAD,
                      writable ? fd.fd : ARES_SOCKET_BAD);
    }
  }
  return query.answer;
}

}  // namespace authcode::doctor
