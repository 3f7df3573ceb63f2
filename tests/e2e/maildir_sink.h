// Reading what the maildir provider delivered, for end-to-end tests that
// use a Maildir as a durable sink shared by one or more servers.
// Header-only; every function reads the folder as it is at the call.
#ifndef AUTHCODE_TESTS_E2E_MAILDIR_SINK_H_
#define AUTHCODE_TESTS_E2E_MAILDIR_SINK_H_

#include <dirent.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace authcode::testing {

// The entries of `dir` but the hidden ones; none when it does not exist.
inline std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    closedir(d);
  }
  return names;
}

// The headers of one delivered mail that tests look at.
struct SinkMail {
  std::string delivery_id;  // X-Authcode-Delivery-Id: the code id.
  std::string to;
  std::string subject;
};

// Every mail in `maildir`/new, in no particular order.
inline std::vector<SinkMail> MailsIn(const std::string& maildir) {
  std::vector<SinkMail> mails;
  for (const std::string& name : ListDir(maildir + "/new")) {
    std::ifstream in(maildir + "/new/" + name);
    SinkMail mail;
    std::string line;
    // The header ends at the first empty line.
    while (std::getline(in, line) && line != "\r" && !line.empty()) {
      if (line.back() == '\r') line.pop_back();
      const auto value = [&](const std::string& header) {
        return line.substr(header.size());
      };
      if (line.rfind("X-Authcode-Delivery-Id: ", 0) == 0) {
        mail.delivery_id = value("X-Authcode-Delivery-Id: ");
      } else if (line.rfind("To: ", 0) == 0) {
        mail.to = value("To: ");
      } else if (line.rfind("Subject: ", 0) == 0) {
        mail.subject = value("Subject: ");
      }
    }
    mails.push_back(std::move(mail));
  }
  return mails;
}

// Delivery id -> how many mails in `maildir` carry it.
inline std::map<std::string, int> DeliveriesIn(const std::string& maildir) {
  std::map<std::string, int> seen;
  for (const SinkMail& mail : MailsIn(maildir)) {
    if (!mail.delivery_id.empty()) ++seen[mail.delivery_id];
  }
  return seen;
}

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_E2E_MAILDIR_SINK_H_
