// Command authcode-example walks through the authcode API from Go: it issues
// a code, verifies the one the user types, and then shows how the two errors
// a caller must handle come back: a rate limit (RESOURCE_EXHAUSTED with a
// google.rpc.RetryInfo detail) and a malformed request (INVALID_ARGUMENT with
// a google.rpc.BadRequest detail).
//
//	authcode-example -target 127.0.0.1:50051 -recipient ada@example.com
//
// It exits 0 when every step went as expected, 1 when the server rejected the
// code, and 2 on anything else (bad flags, an unreachable server, a status
// the walk-through did not expect).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	authcodev1 "authcode/v1"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Every call gets its own deadline, so that a stalled server fails one step
// with DEADLINE_EXCEEDED instead of hanging the program.
const callTimeout = 10 * time.Second

const (
	exitOK         = 0
	exitRejected   = 1
	exitUnexpected = 2
)

func main() {
	target := flag.String("target", "", "authcode server, HOST:PORT")
	recipient := flag.String("recipient", "", "address to send the code to")
	purpose := flag.String("purpose", "login", "what the code is for")
	flag.Parse()
	if *target == "" || *recipient == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: authcode-example -target HOST:PORT "+
			"-recipient ADDRESS [-purpose login]")
		os.Exit(exitUnexpected)
	}

	// Plaintext suits a server on localhost. Anywhere else, pass
	// grpc.WithTransportCredentials with TLS credentials instead. Dial does
	// not wait for the connection: the first call does.
	conn, err := grpc.Dial(*target, grpc.WithInsecure())
	if err != nil {
		fmt.Fprintf(os.Stderr, "dial %s: %v\n", *target, err)
		os.Exit(exitUnexpected)
	}
	client := authcodev1.NewAuthCodeServiceClient(conn)

	exit := run(client, *recipient, *purpose)
	conn.Close()
	os.Exit(exit)
}

// run does the steps in order and returns the exit status.
func run(client authcodev1.AuthCodeServiceClient, recipient,
	purpose string) int {
	resp, err := issue(client, recipient, purpose)
	if err != nil {
		return unexpected("IssueCode", err)
	}
	fmt.Printf("issued %s\n", resp.GetCodeId())

	code, err := readCode(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reading the code: %v\n", err)
		return exitUnexpected
	}
	outcome, err := verify(client, recipient, purpose, code)
	if err != nil {
		return unexpected("VerifyCode", err)
	}
	if outcome != authcodev1.VerifyOutcome_VERIFY_OUTCOME_VERIFIED {
		fmt.Printf("rejected %s\n", outcome)
		return exitRejected
	}
	fmt.Println("verified")

	if exit := showRateLimit(client, recipient, purpose); exit != exitOK {
		return exit
	}
	return showBadRequest(client, purpose)
}

func issue(client authcodev1.AuthCodeServiceClient, recipient,
	purpose string) (*authcodev1.IssueCodeResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return client.IssueCode(ctx, &authcodev1.IssueCodeRequest{
		Recipient: recipient,
		Purpose:   purpose,
	})
}

func verify(client authcodev1.AuthCodeServiceClient, recipient, purpose,
	code string) (authcodev1.VerifyOutcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	resp, err := client.VerifyCode(ctx, &authcodev1.VerifyCodeRequest{
		Recipient: recipient,
		Purpose:   purpose,
		Code:      code,
	})
	return resp.GetOutcome(), err
}

// readCode prompts on stderr, so that stdout carries only results, and
// returns one line without its surrounding spaces: the server compares the
// code exactly and does not trim it.
func readCode(in io.Reader) (string, error) {
	fmt.Fprint(os.Stderr, "code: ")
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// showRateLimit issues a second code at once. The server refuses it until
// the first one's resend_after, and says how long to wait in RetryInfo.
func showRateLimit(client authcodev1.AuthCodeServiceClient, recipient,
	purpose string) int {
	_, err := issue(client, recipient, purpose)
	if status.Code(err) != codes.ResourceExhausted {
		return unexpected("second IssueCode (expected a rate limit)", err)
	}

	delay, ok := retryDelay(err)
	if !ok {
		fmt.Fprintf(os.Stderr, "rate limited without a RetryInfo: %v\n", err)
		return exitUnexpected
	}
	// Round up: a delay of 0.4s shown as "0s" would invite a retry that
	// is refused again.
	seconds := int64(math.Ceil(delay.Seconds()))
	fmt.Printf("rate limited, retry in %ds\n", seconds)
	return exitOK
}

// showBadRequest sends a recipient that is not an address. The server names
// each bad field in a BadRequest, which suits a form that marks its fields.
func showBadRequest(client authcodev1.AuthCodeServiceClient,
	purpose string) int {
	_, err := issue(client, "not an address", purpose)
	if status.Code(err) != codes.InvalidArgument {
		return unexpected("IssueCode with a bad recipient", err)
	}

	violations := fieldViolations(err)
	if len(violations) == 0 {
		fmt.Fprintf(os.Stderr, "invalid argument without a BadRequest: %v\n",
			err)
		return exitUnexpected
	}
	for _, v := range violations {
		fmt.Printf("bad request: %s: %s\n", v.GetField(), v.GetDescription())
	}
	return exitOK
}

// retryDelay finds the RetryInfo among the details of a gRPC error.
func retryDelay(err error) (time.Duration, bool) {
	st, _ := status.FromError(err)
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.RetryInfo); ok {
			d := info.GetRetryDelay()
			return time.Duration(d.GetSeconds())*time.Second +
				time.Duration(d.GetNanos()), true
		}
	}
	return 0, false
}

// fieldViolations collects the field violations of every BadRequest among
// the details of a gRPC error.
func fieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	st, _ := status.FromError(err)
	var out []*errdetails.BadRequest_FieldViolation
	for _, detail := range st.Details() {
		if br, ok := detail.(*errdetails.BadRequest); ok {
			out = append(out, br.GetFieldViolations()...)
		}
	}
	return out
}

// unexpected reports a failed step: its status code and message, or the
// lack of an error where one was expected.
func unexpected(step string, err error) int {
	if err == nil {
		fmt.Fprintf(os.Stderr, "%s: succeeded unexpectedly\n", step)
	} else {
		st, _ := status.FromError(err)
		fmt.Fprintf(os.Stderr, "%s: %s: %s\n", step, st.Code(), st.Message())
	}
	return exitUnexpected
}
