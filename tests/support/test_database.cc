#include "tests/support/test_database.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <pqxx/pqxx>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace authcode::testing {

std::string TestDatabase::ClusterUrl() {
  if (const char* env = std::getenv("AUTHCODE_TEST_DATABASE_URL")) return env;
  std::ifstream in(std::string(AUTHCODE_TEST_PG_DIR) + "/url");
  std::string url;
  std::getline(in, url);
  url = std::string(absl::StripAsciiWhitespace(url));
  if (url.empty()) {
    std::cerr << "No test database: run the tests through ctest (its "
                 "postgres_start fixture starts a throwaway cluster), or set "
                 "AUTHCODE_TEST_DATABASE_URL.\n";
    std::abort();
  }
  return url;
}

std::string TestDatabase::WithDatabase(const std::string& url,
                                       const std::string& database) {
  // postgresql://user:pw@host:port/dbname?params
  const size_t query = url.find('?');
  const std::string base = url.substr(0, query);
  const std::string params =
      query == std::string::npos ? "" : url.substr(query);
  const size_t slash = base.rfind('/');
  return base.substr(0, slash + 1) + database + params;
}

std::unique_ptr<TestDatabase> TestDatabase::Create() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  const std::string name = absl::StrCat("authcode_test_", getpid(), "_",
                                        counter++, "_", rd() % 100000);
  pqxx::connection admin(ClusterUrl());
  pqxx::nontransaction tx(admin);
  tx.exec(absl::StrCat("CREATE DATABASE ", name));
  return std::unique_ptr<TestDatabase>(
      new TestDatabase(name, WithDatabase(ClusterUrl(), name)));
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection admin(ClusterUrl());
    pqxx::nontransaction tx(admin);
    tx.exec(absl::StrCat("DROP DATABASE IF EXISTS ", name_, " WITH (FORCE)"));
  } catch (const std::exception& e) {
    std::cerr << "could not drop test database " << name_ << ": " << e.what()
              << "\n";
  }
}

std::vector<std::vector<std::string>> TestDatabase::Query(
    const std::string& sql) const {
  pqxx::connection conn(url_);
  pqxx::nontransaction tx(conn);
  std::vector<std::vector<std::string>> rows;
  for (const auto& row : tx.exec(sql)) {
    std::vector<std::string> values;
    for (const auto& field : row) {
      values.push_back(field.is_null() ? "NULL" : field.c_str());
    }
    rows.push_back(std::move(values));
  }
  return rows;
}

std::string TestDatabase::Scalar(const std::string& sql) const {
  const auto rows = Query(sql);
  if (rows.size() != 1 || rows[0].size() != 1) {
    std::cerr << "expected one value from: " << sql << "\n";
    std::abort();
  }
  return rows[0][0];
}

}  // namespace authcode::testing
