// `authcode migrate` as an operator or a deployment's one-shot job runs it:
// a fresh database gets every migration, a second run changes nothing, and
// a database migrated by a later binary is refused, untouched, by this one
// (and by the server, which migrates at start-up).
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/process.h"
#include "tests/support/test_database.h"

namespace authcode {
namespace {

using ::testing::HasSubstr;
using testing::KeyRing;
using ::testing::Not;
using testing::Process;
using testing::TestDatabase;

// The names of the migrations in the source tree, which the binary embeds.
std::vector<std::string> SourceMigrations() {
  const std::filesystem::path dir = std::filesystem::path(__FILE__)
                                        .parent_path()
                                        .parent_path()
                                        .parent_path() /
                                    "migrations";
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".sql") {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  EXPECT_FALSE(names.empty()) << "no migrations in " << dir;
  return names;
}

class MigrateE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = TestDatabase::Create();
    env_ = {"PATH=/usr/bin:/bin", "AUTHCODE_DATABASE_URL=" + db_->url(),
            "AUTHCODE_HASHING_KEYS=" + KeyRing("h1", 'h'),
            "AUTHCODE_OUTBOX_KEYS=" + KeyRing("o1", 'o'),
            "AUTHCODE_LISTEN=127.0.0.1:0"};
  }

  std::string Applied() const {
    return db_->Scalar(
        "SELECT string_agg(name || '@' || applied_at, ',' ORDER BY version) "
        "FROM authcode_migrations");
  }

  std::unique_ptr<TestDatabase> db_;
  std::vector<std::string> env_;
};

TEST_F(MigrateE2eTest, AppliesEveryMigrationToAFreshDatabase) {
  Process migrate({AUTHCODE_BINARY, "migrate"}, env_);
  ASSERT_EQ(migrate.Wait(), 0) << migrate.err();

  for (const std::string& name : SourceMigrations()) {
    EXPECT_THAT(migrate.out(), HasSubstr("applied " + name + "\n"));
  }
  EXPECT_THAT(migrate.out(), HasSubstr("schema up to date\n"));
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM authcode_migrations"),
            absl::StrCat(SourceMigrations().size()));
  EXPECT_EQ(db_->Scalar("SELECT count(*) FROM pg_proc WHERE proname = "
                        "'authcode_issue'"),
            "1");
}

TEST_F(MigrateE2eTest, ASecondRunIsANoOp) {
  Process first({AUTHCODE_BINARY, "migrate"}, env_);
  ASSERT_EQ(first.Wait(), 0) << first.err();
  const std::string applied = Applied();

  Process second({AUTHCODE_BINARY, "migrate"}, env_);
  ASSERT_EQ(second.Wait(), 0) << second.err();
  EXPECT_THAT(second.out(), HasSubstr("schema up to date, nothing to apply"));
  EXPECT_THAT(second.out(), Not(HasSubstr("applied ")));
  EXPECT_EQ(Applied(), applied);
}

TEST_F(MigrateE2eTest, RefusesADatabaseMigratedByALaterVersion) {
  Process first({AUTHCODE_BINARY, "migrate"}, env_);
  ASSERT_EQ(first.Wait(), 0) << first.err();
  db_->Query(
      "INSERT INTO authcode_migrations (version, name, sha256) "
      "VALUES (9999, '9999_from_the_future.sql', 'later')");
  const std::string applied = Applied();

  Process migrate({AUTHCODE_BINARY, "migrate"}, env_);
  EXPECT_EQ(migrate.Wait(), 4);
  EXPECT_THAT(migrate.err(), HasSubstr("newer than this binary"));
  EXPECT_THAT(migrate.err(), HasSubstr("9999"));
  EXPECT_THAT(migrate.out(), Not(HasSubstr("schema up to date")));
  EXPECT_EQ(Applied(), applied);

  // The server, which migrates at start-up, refuses to serve on it too.
  Process server({AUTHCODE_BINARY}, env_);
  EXPECT_EQ(server.Wait(), 1);
  EXPECT_THAT(server.err(), HasSubstr("newer than this binary"));

  // check-config --connect says so without touching it.
  Process check({AUTHCODE_BINARY, "check-config", "--connect"}, env_);
  EXPECT_EQ(check.Wait(), 4);
  EXPECT_THAT(check.err(), HasSubstr("FAIL  database: the schema is newer"));
}

TEST_F(MigrateE2eTest, AnUnreachableDatabaseIsExit3) {
  env_[1] = "AUTHCODE_DATABASE_URL=postgresql://authcode@127.0.0.1:1/authcode";
  Process migrate({AUTHCODE_BINARY, "migrate"}, env_);
  EXPECT_EQ(migrate.Wait(), 3);
  EXPECT_THAT(migrate.err(), HasSubstr("unreachable"));
}

}  // namespace
}  // namespace authcode
