// RpcExecutor: runs what it is given on its own threads, refuses past its
// queue bound, and runs everything queued before it is destroyed.
#include "server/rpc_executor.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace authcode {
namespace {

TEST(RpcExecutorTest, RunsTasksOnItsOwnThreads) {
  std::atomic<int> ran{0};
  std::atomic<bool> on_caller{false};
  const std::thread::id caller = std::this_thread::get_id();
  {
    RpcExecutor executor(4, 100);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(executor.Submit([&] {
        if (std::this_thread::get_id() == caller) on_caller = true;
        ++ran;
      }));
    }
  }
  EXPECT_EQ(ran, 50);
  EXPECT_FALSE(on_caller);
}

TEST(RpcExecutorTest, RefusesPastItsQueueBound) {
  absl::Notification release;
  absl::Notification started;
  std::atomic<int> ran{0};
  RpcExecutor executor(1, 3);
  // The one thread is busy; three more wait; the fifth is refused.
  ASSERT_TRUE(executor.Submit([&] {
    started.Notify();
    release.WaitForNotification();
    ++ran;
  }));
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(executor.Submit([&] { ++ran; })) << i;
  }
  EXPECT_FALSE(executor.Submit([&] { ++ran; }));
  release.Notify();
  // Room again once the queue drains.
  while (ran < 4) std::this_thread::yield();
  EXPECT_TRUE(executor.Submit([&] { ++ran; }));
}

TEST(RpcExecutorTest, RunsWhatIsQueuedBeforeStopping) {
  std::atomic<int> ran{0};
  absl::Notification release;
  {
    RpcExecutor executor(1, 10);
    ASSERT_TRUE(executor.Submit([&] {
      release.WaitForNotification();
      ++ran;
    }));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(executor.Submit([&] { ++ran; }));
    release.Notify();
  }
  EXPECT_EQ(ran, 6);
}

}  // namespace
}  // namespace authcode
