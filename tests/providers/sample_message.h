// The message the provider tests send: a login code from a named sender,
// with a text and an HTML part and a delivery id.
#ifndef AUTHCODE_TESTS_PROVIDERS_SAMPLE_MESSAGE_H_
#define AUTHCODE_TESTS_PROVIDERS_SAMPLE_MESSAGE_H_

#include "providers/provider.h"

namespace authcode::testing {

inline providers::Message SampleMessage() {
  providers::Message message;
  message.from_address = "no-reply@example.com";
  message.from_name = "Example Login";
  message.to_address = "ada@example.org";
  message.subject = "Your code";
  message.text = "Your code is 123456.";
  message.html = "<p>Your code is <b>123456</b>.</p>";
  message.delivery_id = "42";
  return message;
}

}  // namespace authcode::testing

#endif  // AUTHCODE_TESTS_PROVIDERS_SAMPLE_MESSAGE_H_
