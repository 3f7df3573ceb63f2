// A fresh PostgreSQL database per test binary, on the cluster that the
// `postgres_start` CTest fixture started (or AUTHCODE_TEST_DATABASE_URL).
// Dropped again when the object dies.
#ifndef AUTHCODE_TESTS_SUPPORT_TEST_DATABASE_H_
#define AUTHCODE_TESTS_SUPPORT_TEST_DATABASE_H_

#include <memory>
#include <string>
#include <vector>

namespace authcode::testing {

class TestDatabase {
 public:
  // Creates a database with a unique name. Aborts the test binary with a
  // clear message when no cluster is reachable.
  static std::unique_ptr<TestDatabase> Create();
  ~TestDatabase();

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

  // Runs `sql` and returns every row as text (NULL as "NULL").
  std::vector<std::vector<std::string>> Query(const std::string& sql) const;
  // The single value of a one-row, one-column query.
  std::string Scalar(const std::string& sql) const;

  // The cluster's maintenance URL (database "postgres").
  static std::string ClusterUrl();
  // `url` with its database name replaced by `database`.
  static std::string WithDatabase(const std::string& url,
                                  const std::string& database);

 private:
  TestDatabase(std::string name, std::string url)
      : name_(std::move(name)), url_(std::move(url)) {}

  std::string name_;
  std::string url_;
};

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_SUPPORT_TEST_DATABASE_H_
