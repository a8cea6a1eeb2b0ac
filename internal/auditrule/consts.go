// Package auditrule reads and writes Linux audit rules.
//
// It parses the rule language of auditctl as people write it in rules files
// (audit.rules, rules.d/*.rules), encodes a rule to the kernel's
// struct audit_rule_data bytes exactly as auditctl 3.0.9 would send them,
// decodes the kernel's bytes back, and prints a rule in the canonical text
// of `auditctl -l`. Nothing here talks to the kernel: see package auditnl.
//
// Where auditctl has a quirk that changes the bytes (keys always go last,
// -w on a directory becomes a dir= field, -S without an arch uses the host's
// table, ...) this package copies it, because a rule's identity in the kernel
// is its bytes. Where auditctl silently accepts nonsense (a value that does
// not fit in 32 bits, a trailing word after a number, "possible") this
// package reports an error naming the line and the word instead.
package auditrule

// Constants from include/uapi/linux/audit.h.

// Filter is the kernel filter list a rule lives on.
type Filter uint32

// The kernel's filter lists. The kernel lists rules list by list in this
// numeric order, each list in insertion order.
const (
	FilterUser    Filter = 0x00
	FilterTask    Filter = 0x01
	FilterEntry   Filter = 0x02 // deprecated, rejected by the kernel
	FilterWatch   Filter = 0x03 // internal to the kernel
	FilterExit    Filter = 0x04
	FilterExclude Filter = 0x05
	FilterFS      Filter = 0x06

	filterPrepend uint32 = 0x10 // flag: -A, insert at the head of the list
	filterMask    uint32 = 0x07
	numFilters           = 8
)

var filterNames = map[Filter]string{
	FilterUser:    "user",
	FilterTask:    "task",
	FilterEntry:   "entry",
	FilterExit:    "exit",
	FilterExclude: "exclude",
	FilterFS:      "filesystem",
}

// Action is what the kernel does when a rule matches.
type Action uint32

// Rule actions.
const (
	ActionNever    Action = 0
	ActionPossible Action = 1 // deprecated
	ActionAlways   Action = 2
)

var actionNames = map[Action]string{ActionNever: "never", ActionPossible: "possible", ActionAlways: "always"}

// Op is a field comparison operator, as stored in audit_rule_data.fieldflags.
type Op uint32

// Field operators.
const (
	OpBitMask     Op = 0x08000000 // &
	OpLessThan    Op = 0x10000000 // <
	OpGreaterThan Op = 0x20000000 // >
	OpNotEqual    Op = 0x30000000 // !=
	OpEqual       Op = 0x40000000 // =
	OpBitTest     Op = OpBitMask | OpEqual
	OpLessOrEqual Op = OpLessThan | OpEqual
	OpGreaterOrEq Op = OpGreaterThan | OpEqual
	opAll         Op = OpEqual | OpNotEqual | OpBitMask
)

var opSymbols = map[Op]string{
	OpBitMask: "&", OpLessThan: "<", OpGreaterThan: ">", OpNotEqual: "!=",
	OpEqual: "=", OpBitTest: "&=", OpLessOrEqual: "<=", OpGreaterOrEq: ">=",
}

// opSearch is the order in which libaudit looks for an operator inside
// "name<op>value": the first one found anywhere in the word wins, so
// "a1&=4" is &= and "path=/x<y" is =.
var opSearch = []struct {
	sym string
	op  Op
}{
	{"!=", OpNotEqual}, {">=", OpGreaterOrEq}, {"<=", OpLessOrEqual}, {"&=", OpBitTest},
	{"=", OpEqual}, {">", OpGreaterThan}, {"<", OpLessThan}, {"&", OpBitMask},
}

// Field types (AUDIT_* field numbers).
const (
	FieldPID        uint32 = 0
	FieldUID        uint32 = 1
	FieldEUID       uint32 = 2
	FieldSUID       uint32 = 3
	FieldFSUID      uint32 = 4
	FieldGID        uint32 = 5
	FieldEGID       uint32 = 6
	FieldSGID       uint32 = 7
	FieldFSGID      uint32 = 8
	FieldLoginUID   uint32 = 9
	FieldPers       uint32 = 10
	FieldArch       uint32 = 11
	FieldMsgType    uint32 = 12
	FieldSubjUser   uint32 = 13
	FieldSubjRole   uint32 = 14
	FieldSubjType   uint32 = 15
	FieldSubjSen    uint32 = 16
	FieldSubjClr    uint32 = 17
	FieldPPID       uint32 = 18
	FieldObjUser    uint32 = 19
	FieldObjRole    uint32 = 20
	FieldObjType    uint32 = 21
	FieldObjLevLow  uint32 = 22
	FieldObjLevHigh uint32 = 23
	FieldSessionID  uint32 = 25
	FieldFSType     uint32 = 26
	FieldDevMajor   uint32 = 100
	FieldDevMinor   uint32 = 101
	FieldInode      uint32 = 102
	FieldExit       uint32 = 103
	FieldSuccess    uint32 = 104
	FieldWatch      uint32 = 105 // path=
	FieldPerm       uint32 = 106
	FieldDir        uint32 = 107
	FieldFileType   uint32 = 108
	FieldObjUID     uint32 = 109
	FieldObjGID     uint32 = 110
	FieldCompare    uint32 = 111 // -C
	FieldExe        uint32 = 112
	FieldSaddrFam   uint32 = 113
	FieldArg0       uint32 = 200
	FieldArg1       uint32 = 201
	FieldArg2       uint32 = 202
	FieldArg3       uint32 = 203
	FieldFilterKey  uint32 = 210
	MaxFields              = 64
	MaxKeyLen              = 256
	bitmaskWords           = 64
	syscallClasses         = 16
	pathMax                = 4096
	nameMax                = 255
	keySeparator           = '\x01'
	unsetID         uint32 = 0xFFFFFFFF
)

// Permission bits of the perm field.
const (
	PermExec  uint32 = 1
	PermWrite uint32 = 2
	PermRead  uint32 = 4
	PermAttr  uint32 = 8
)
