package postgres_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/spear-next/sms/sqlkv/postgres"
)

func TestRedactError(t *testing.T) {
	for _, dsn := range []string{
		"postgres://sms:hunter2@db/sms",
		"postgres://db/sms?password=hunter2",
		"host=db password='hunter2' user=sms",
	} {
		err := postgres.RedactError(errors.New("connect "+dsn+": failed; password hunter2 rejected"), dsn)
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("RedactError for %q = %q, still holds the password", dsn, err)
		}
	}
	plain := errors.New("no secret here")
	if got := postgres.RedactError(plain, "postgres://u:p4ss@db/x"); got != plain {
		t.Errorf("RedactError changed an error without secrets: %v", got)
	}
	if got := postgres.RedactError(nil, "postgres://u:p4ss@db/x"); got != nil {
		t.Errorf("RedactError(nil) = %v, want nil", got)
	}
}
