// TXT lookups for the sender doctor, on c-ares.
//
// A Resolver asks the configured DNS servers ("host[:port]", comma-
// separated; the system's from /etc/resolv.conf when none are given) one
// question at a time and waits for the answer at most `timeout`, retries
// included: the wait is a poll() loop bounded by that deadline, after which
// the query is cancelled and reported as a timeout. Answers keep apart a
// name that does not exist (NXDOMAIN), one without TXT records (no data),
// a timeout and any other failure (SERVFAIL, REFUSED, a refused
// connection); a record sent as several strings comes back joined. A
// truncated UDP answer is asked again over TCP by c-ares itself. A server
// that answers SERVFAIL or REFUSED is reported as such: the next server
// of the list is not asked then, only when one does not answer at all.
//
// Thread safety: none; one Resolver per thread.
#ifndef AUTHCODE_SERVER_DOCTOR_RESOLVER_H_
#define AUTHCODE_SERVER_DOCTOR_RESOLVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/doctor/records.h"

namespace authcode::doctor {

class Resolver {
 public:
  struct Options {
    // "host[:port]", comma-separated, host an IP address (IPv6 in brackets
    // when a port follows); empty for the system's servers.
    std::string servers;
    absl::Duration timeout = absl::Seconds(5);
  };

  // InvalidArgument naming `servers` when c-ares cannot parse it;
  // Internal when c-ares cannot start.
  static absl::StatusOr<std::unique_ptr<Resolver>> Create(
      const Options& options);
  ~Resolver();

  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // The TXT records of `name`.
  TxtAnswer LookupTxt(const std::string& name);

 private:
  struct Channel;
  Resolver(std::unique_ptr<Channel> channel, absl::Duration timeout);

  std::unique_ptr<Channel> channel_;
  absl::Duration timeout_;
};

}  // namespace authcode::doctor

#endif  // AUTHCODE_SERVER_DOCTOR_RESOLVER_H_
