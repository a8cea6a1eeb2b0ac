package changelog

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
)

// JSONFormatter writes logrus entries (harden's diagnostics) in the same shape as JSONLines
// records: one JSON object per line with MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, and each
// logrus field as HARDEN_<FIELD>. Where there is no journald (harden boot on a Fly Machine)
// every line harden writes can then be read by one parser.
type JSONFormatter struct {
	RunID string
}

var nonField = regexp.MustCompile(`[^A-Z0-9_]+`)

// Format implements logrus.Formatter.
func (f JSONFormatter) Format(e *logrus.Entry) ([]byte, error) {
	obj := make(map[string]string, len(e.Data)+4)
	for k, v := range e.Data {
		name := "HARDEN_" + nonField.ReplaceAllString(strings.ToUpper(k), "_")
		if len(name) <= 64 {
			obj[name] = toString(v)
		}
	}
	obj["MESSAGE"] = e.Message
	obj["PRIORITY"] = strconv.Itoa(int(levelPriority(e.Level)))
	obj["SYSLOG_IDENTIFIER"] = "harden"
	if f.RunID != "" {
		obj["HARDEN_RUN_ID"] = f.RunID
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case error:
		return x.Error()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return strings.Trim(string(b), `"`)
}

func levelPriority(l logrus.Level) Priority {
	switch l {
	case logrus.PanicLevel, logrus.FatalLevel:
		return PriCrit
	case logrus.ErrorLevel:
		return PriErr
	case logrus.WarnLevel:
		return PriWarning
	case logrus.InfoLevel:
		return PriInfo
	}
	return PriDebug
}
