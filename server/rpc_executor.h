// A fixed set of threads that run RPC handlers off gRPC's own threads.
//
// The service uses gRPC's callback API: gRPC calls a handler on one of its
// few event threads, and the handler must not block there. Every RPC waits
// on the database, so the handler queues the work here and returns; one of
// these threads runs it and finishes the call. With as many threads as
// the RPC connection pool has connections, no call waits for a thread
// while a connection is free, and no thread waits for a connection.
//
// The queue is bounded: past `max_queued` waiting calls Submit() refuses,
// and the caller answers UNAVAILABLE at once rather than letting latency
// grow without limit.
//
// Thread safety: Submit() may be called from any thread. The destructor
// runs what is queued, then joins the threads.
#ifndef AUTHCODE_SERVER_RPC_EXECUTOR_H_
#define AUTHCODE_SERVER_RPC_EXECUTOR_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace authcode {

class RpcExecutor {
 public:
  RpcExecutor(int threads, size_t max_queued);
  ~RpcExecutor();

  RpcExecutor(const RpcExecutor&) = delete;
  RpcExecutor& operator=(const RpcExecutor&) = delete;

  // Queues `task`; false (and `task` dropped) when the queue is full.
  bool Submit(std::function<void()> task);

 private:
  void Loop();

  const size_t max_queued_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace authcode

#endif  // AUTHCODE_SERVER_RPC_EXECUTOR_H_
