// Applying the schema: idempotent, safe when several servers start at
// once, and loud when an applied migration was edited.
#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/embedded.h"
#include "server/store.h"
#include "tests/support/test_database.h"

namespace authcode {
namespace {

using testing::TestDatabase;

TEST(MigrationsTest, MigrationsAreEmbeddedInOrder) {
  const auto& files = EmbeddedMigrations();
  ASSERT_FALSE(files.empty());
  EXPECT_EQ(files.front().path, "0001_init.sql");
  for (size_t i = 1; i < files.size(); ++i) {
    EXPECT_LT(files[i - 1].path, files[i].path);
  }
}

TEST(MigrationsTest, ApplyingTwiceChangesNothing) {
  auto db = TestDatabase::Create();
  auto store = Store::Connect(db->url(), 2);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Migrate().ok());
  const std::string applied = db->Scalar(
      "SELECT string_agg(version || ':' || applied_at, ',') "
      "FROM authcode_migrations");
  ASSERT_TRUE((*store)->Migrate().ok());
  EXPECT_EQ(db->Scalar("SELECT string_agg(version || ':' || applied_at, ',') "
                       "FROM authcode_migrations"),
            applied);
  EXPECT_EQ(db->Scalar("SELECT count(*) FROM authcode_migrations"),
            absl::StrCat(EmbeddedMigrations().size()));
}

TEST(MigrationsTest, ServersStartingAtOnceApplyEachMigrationOnce) {
  auto db = TestDatabase::Create();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      auto store = Store::Connect(db->url(), 1);
      if (!store.ok() || !(*store)->Migrate().ok()) ++failures;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(db->Scalar("SELECT count(*) FROM authcode_migrations"),
            absl::StrCat(EmbeddedMigrations().size()));
  EXPECT_EQ(db->Scalar("SELECT count(*) FROM pg_proc WHERE proname = "
                       "'authcode_issue'"),
            "1");
}

TEST(MigrationsTest, RefusesAnEditedAppliedMigration) {
  auto db = TestDatabase::Create();
  auto store = Store::Connect(db->url(), 1);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Migrate().ok());
  db->Query(
      "UPDATE authcode_migrations SET sha256 = 'edited' "
      "WHERE version = 1");
  absl::Status status = (*store)->Migrate();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("0001_init.sql"), absl::string_view::npos)
      << status;
}

TEST(MigrationsTest, RefusesADatabaseMigratedByALaterBinary) {
  auto db = TestDatabase::Create();
  auto store = Store::Connect(db->url(), 1);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Migrate().ok());
  db->Query(
      "INSERT INTO authcode_migrations (version, name, sha256) "
      "VALUES (9999, '9999_later.sql', 'later')");

  absl::Status status = (*store)->Migrate();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("newer than this binary"),
            absl::string_view::npos)
      << status;
  EXPECT_NE(status.message().find("9999"), absl::string_view::npos) << status;
  absl::StatusOr<SchemaStatus> schema = (*store)->CheckSchema();
  ASSERT_TRUE(schema.ok()) << schema.status();
  EXPECT_EQ(schema->unknown, std::vector<int>{9999});
  EXPECT_FALSE(schema->current());
}

TEST(MigrationsTest, CheckSchemaListsPendingMigrationsAndChangesNothing) {
  auto db = TestDatabase::Create();
  auto store = Store::Connect(db->url(), 1);
  ASSERT_TRUE(store.ok());

  absl::StatusOr<SchemaStatus> fresh = (*store)->CheckSchema();
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->pending.size(), EmbeddedMigrations().size());
  EXPECT_EQ(db->Scalar("SELECT to_regclass('authcode_migrations') IS NULL"),
            "t");

  std::vector<std::string> applied;
  ASSERT_TRUE((*store)->Migrate(&applied).ok());
  EXPECT_EQ(applied, fresh->pending);
  absl::StatusOr<SchemaStatus> migrated = (*store)->CheckSchema();
  ASSERT_TRUE(migrated.ok()) << migrated.status();
  EXPECT_TRUE(migrated->current());

  db->Query("DELETE FROM authcode_migrations WHERE version = 5");
  absl::StatusOr<SchemaStatus> behind = (*store)->CheckSchema();
  ASSERT_TRUE(behind.ok()) << behind.status();
  EXPECT_EQ(behind->pending, std::vector<std::string>{"0005_throughput.sql"});
}

TEST(MigrationsTest, UnreachableDatabaseIsUnavailable) {
  // A port nothing listens on (the cluster's own port, plus one, is not
  // guaranteed free; port 1 on loopback is).
  auto store =
      Store::Connect("postgresql://nobody:none@127.0.0.1:1/nothing", 1);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable)
      << store.status();
}

}  // namespace
}  // namespace authcode
