package auditrule

import "sync"

// kind says how a field's value is written and printed.
type kind int

const (
	kindNum      kind = iota // signed decimal (pid, pers, ppid, saddr_fam, ...)
	kindUID                  // number, -number, "unset" or a user name
	kindGID                  // number or a group name
	kindSession              // number, -number or "unset"
	kindInode                // unsigned decimal
	kindExit                 // number or [-]ERRNO name
	kindMsgType              // record type name or number
	kindString               // stored in buf (subj_*, obj_*, path, dir, exe, key)
	kindArch                 // b64, b32, machine name or number
	kindPerm                 // rwxa letters
	kindFileType             // file, dir, socket, link, character, block, fifo
	kindFSType               // debugfs, tracefs or number
	kindArg                  // a0..a3: printed as hex
	kindCompare              // -C: one of the AUDIT_COMPARE_* values
)

type fieldInfo struct {
	name     string
	kind     kind
	exitOnly bool // libaudit refuses it outside the exit list
}

// fieldTable is libaudit 3.0.9's field table, indexed by field number (an array is
// static data: nothing to build at process start). The printed name is the one here;
// "loginuid" is accepted as another spelling of "auid".
var fieldTable = [...]fieldInfo{
	FieldPID:        {"pid", kindNum, false},
	FieldUID:        {"uid", kindUID, false},
	FieldEUID:       {"euid", kindUID, false},
	FieldSUID:       {"suid", kindUID, false},
	FieldFSUID:      {"fsuid", kindUID, false},
	FieldGID:        {"gid", kindGID, false},
	FieldEGID:       {"egid", kindGID, false},
	FieldSGID:       {"sgid", kindGID, false},
	FieldFSGID:      {"fsgid", kindGID, false},
	FieldLoginUID:   {"auid", kindUID, false},
	FieldPers:       {"pers", kindNum, false},
	FieldArch:       {"arch", kindArch, false},
	FieldMsgType:    {"msgtype", kindMsgType, false},
	FieldSubjUser:   {"subj_user", kindString, false},
	FieldSubjRole:   {"subj_role", kindString, false},
	FieldSubjType:   {"subj_type", kindString, false},
	FieldSubjSen:    {"subj_sen", kindString, false},
	FieldSubjClr:    {"subj_clr", kindString, false},
	FieldPPID:       {"ppid", kindNum, true},
	FieldObjUser:    {"obj_user", kindString, true},
	FieldObjRole:    {"obj_role", kindString, true},
	FieldObjType:    {"obj_type", kindString, true},
	FieldObjLevLow:  {"obj_lev_low", kindString, true},
	FieldObjLevHigh: {"obj_lev_high", kindString, true},
	FieldSessionID:  {"sessionid", kindSession, false},
	FieldFSType:     {"fstype", kindFSType, false},
	FieldDevMajor:   {"devmajor", kindNum, true},
	FieldDevMinor:   {"devminor", kindNum, true},
	FieldInode:      {"inode", kindInode, true},
	FieldExit:       {"exit", kindExit, true},
	FieldSuccess:    {"success", kindNum, true},
	FieldWatch:      {"path", kindString, true},
	FieldPerm:       {"perm", kindPerm, true},
	FieldDir:        {"dir", kindString, true},
	FieldFileType:   {"filetype", kindFileType, true},
	FieldObjUID:     {"obj_uid", kindUID, false},
	FieldObjGID:     {"obj_gid", kindGID, false},
	FieldCompare:    {"field_compare", kindCompare, true},
	FieldExe:        {"exe", kindString, false},
	FieldSaddrFam:   {"saddr_fam", kindNum, false},
	FieldArg0:       {"a0", kindArg, false},
	FieldArg1:       {"a1", kindArg, false},
	FieldArg2:       {"a2", kindArg, false},
	FieldArg3:       {"a3", kindArg, false},
	FieldFilterKey:  {"key", kindString, false},
}

// fieldInfoOf returns a field number's entry in the table, and whether it has one.
func fieldInfoOf(id uint32) (fieldInfo, bool) {
	if id >= uint32(len(fieldTable)) || fieldTable[id].name == "" {
		return fieldInfo{}, false
	}
	return fieldTable[id], true
}

// fieldByName maps every accepted spelling to the field number; built on first use.
var fieldByName = sync.OnceValue(func() map[string]uint32 {
	m := map[string]uint32{"loginuid": FieldLoginUID}
	for id, f := range fieldTable {
		if f.name != "" {
			m[f.name] = uint32(id)
		}
	}
	return m
})

// isStringField reports whether a field's value lives in the rule's buf.
func isStringField(id uint32) bool {
	f, ok := fieldInfoOf(id)
	return ok && f.kind == kindString
}

// fileTypes are the names of the filetype field (S_IF* values).
var fileTypes = map[string]uint32{
	"block": 0o060000, "character": 0o020000, "dir": 0o040000, "fifo": 0o010000,
	"file": 0o100000, "link": 0o120000, "socket": 0o140000,
}

// fsTypes are the names of the fstype field (filesystem magic numbers).
var fsTypes = map[string]uint32{"debugfs": 0x64626720, "tracefs": 0x74726163}

var fsTypeNames = map[uint32]string{0x64626720: "debugfs", 0x74726163: "tracefs"}

// comparisons maps an unordered pair of -C field names to the kernel's
// AUDIT_COMPARE_* value and back. Printing uses the pair order given here.
var comparisons = []struct {
	a, b  string
	value uint32
}{
	{"uid", "obj_uid", 1}, {"gid", "obj_gid", 2}, {"euid", "obj_uid", 3},
	{"egid", "obj_gid", 4}, {"auid", "obj_uid", 5}, {"suid", "obj_uid", 6},
	{"sgid", "obj_gid", 7}, {"fsuid", "obj_uid", 8}, {"fsgid", "obj_gid", 9},
	{"uid", "auid", 10}, {"uid", "euid", 11}, {"uid", "fsuid", 12},
	{"uid", "suid", 13}, {"auid", "fsuid", 14}, {"auid", "suid", 15},
	{"auid", "euid", 16}, {"euid", "suid", 17}, {"euid", "fsuid", 18},
	{"suid", "fsuid", 19}, {"gid", "egid", 20}, {"gid", "fsgid", 21},
	{"gid", "sgid", 22}, {"egid", "fsgid", 23}, {"egid", "sgid", 24},
	{"sgid", "fsgid", 25},
}

func compareValue(a, b string) (uint32, bool) {
	for _, c := range comparisons {
		if (c.a == a && c.b == b) || (c.a == b && c.b == a) {
			return c.value, true
		}
	}
	return 0, false
}

func compareNames(v uint32) (string, string, bool) {
	for _, c := range comparisons {
		if c.value == v {
			return c.a, c.b, true
		}
	}
	return "", "", false
}

// userMsgTypes returns the user-space record types that libaudit.h names and
// linux/audit.h does not (the ones an exclude or user rule may name).
func userMsgTypes() map[string]int {
	return map[string]int{
		"USER_AUTH": 1100, "USER_ACCT": 1101, "USER_MGMT": 1102, "CRED_ACQ": 1103,
		"CRED_DISP": 1104, "USER_START": 1105, "USER_END": 1106, "USER_CHAUTHTOK": 1108,
		"USER_ERR": 1109, "CRED_REFR": 1110, "USYS_CONFIG": 1111, "USER_LOGIN": 1112,
		"USER_LOGOUT": 1113, "ADD_USER": 1114, "DEL_USER": 1115, "ADD_GROUP": 1116,
		"DEL_GROUP": 1117, "DAC_CHECK": 1118, "CHGRP_ID": 1119, "TEST": 1120,
		"TRUSTED_APP": 1121, "USER_SELINUX_ERR": 1122, "USER_CMD": 1123,
		"CHUSER_ID": 1125, "GRP_AUTH": 1126, "SYSTEM_BOOT": 1127,
		"SYSTEM_SHUTDOWN": 1128, "SYSTEM_RUNLEVEL": 1129, "SERVICE_START": 1130,
		"SERVICE_STOP": 1131, "GRP_MGMT": 1132, "GRP_CHAUTHTOK": 1133,
		"MAC_CHECK": 1134, "ACCT_LOCK": 1135, "ACCT_UNLOCK": 1136, "USER_DEVICE": 1137,
		"SOFTWARE_UPDATE":     1138,
		"ANOM_LOGIN_FAILURES": 2100, "ANOM_LOGIN_TIME": 2101, "ANOM_LOGIN_SESSIONS": 2102,
		"ANOM_LOGIN_ACCT": 2103, "ANOM_LOGIN_LOCATION": 2104, "ANOM_MAX_DAC": 2105,
		"ANOM_MAX_MAC": 2106, "ANOM_AMTU_FAIL": 2107, "ANOM_RBAC_FAIL": 2108,
		"ANOM_RBAC_INTEGRITY_FAIL": 2109, "ANOM_CRYPTO_FAIL": 2110,
		"ANOM_ACCESS_FS": 2111, "ANOM_EXEC": 2112, "ANOM_MK_EXEC": 2113,
		"ANOM_ADD_ACCT": 2114, "ANOM_DEL_ACCT": 2115, "ANOM_MOD_ACCT": 2116,
		"ANOM_ROOT_TRANS": 2117, "ANOM_LOGIN_SERVICE": 2118,
		"RESP_ANOMALY": 2200, "RESP_ALERT": 2201, "RESP_KILL_PROC": 2202,
		"RESP_TERM_ACCESS": 2203, "RESP_ACCT_REMOTE": 2204, "RESP_ACCT_LOCK_TIMED": 2205,
		"RESP_ACCT_UNLOCK_TIMED": 2206, "RESP_ACCT_LOCK": 2207, "RESP_TERM_LOCK": 2208,
		"RESP_SEBOOL": 2209, "RESP_EXEC": 2210, "RESP_SINGLE": 2211, "RESP_HALT": 2212,
		"RESP_ORIGIN_BLOCK": 2213, "RESP_ORIGIN_BLOCK_TIMED": 2214,
		"USER_ROLE_CHANGE": 2300, "ROLE_ASSIGN": 2301, "ROLE_REMOVE": 2302,
		"LABEL_OVERRIDE": 2303, "LABEL_LEVEL_CHANGE": 2304, "USER_LABELED_EXPORT": 2305,
		"USER_UNLABELED_EXPORT": 2306, "DEV_ALLOC": 2307, "DEV_DEALLOC": 2308,
		"FS_RELABEL": 2309, "USER_MAC_POLICY_LOAD": 2310, "ROLE_MODIFY": 2311,
		"USER_MAC_CONFIG_CHANGE": 2312, "USER_MAC_STATUS": 2313,
		"CRYPTO_TEST_USER": 2400, "CRYPTO_PARAM_CHANGE_USER": 2401,
		"CRYPTO_LOGIN": 2402, "CRYPTO_LOGOUT": 2403, "CRYPTO_KEY_USER": 2404,
		"CRYPTO_FAILURE_USER": 2405, "CRYPTO_REPLAY_USER": 2406,
		"CRYPTO_SESSION": 2407, "CRYPTO_IKE_SA": 2408, "CRYPTO_IPSEC_SA": 2409,
		"VIRT_CONTROL": 2500, "VIRT_RESOURCE": 2501, "VIRT_MACHINE_ID": 2502,
		"VIRT_INTEGRITY_CHECK": 2503, "VIRT_CREATE": 2504, "VIRT_DESTROY": 2505,
		"VIRT_MIGRATE_IN": 2506, "VIRT_MIGRATE_OUT": 2507,
	}
}

// msgTypes returns the record types by name and the printed name of each number; built on
// first use (most commands never parse or print a msgtype field).
var msgTypes = sync.OnceValues(func() (map[string]uint32, map[uint32]string) {
	byName := map[string]uint32{}
	names := map[uint32]string{}
	add := func(m map[string]int) {
		for n, v := range m {
			byName[n] = uint32(v)
			if old, ok := names[uint32(v)]; !ok || n < old {
				names[uint32(v)] = n
			}
		}
	}
	add(kernelMsgTypes())
	add(userMsgTypes())
	return byName, names
})

func msgTypeByName() map[string]uint32 { m, _ := msgTypes(); return m }
func msgTypeNames() map[uint32]string  { _, m := msgTypes(); return m }

// The generated errno tables (zerrno.go), built on first use.
var (
	errnoNames   = sync.OnceValue(newErrnoNames)
	errnoPrinted = sync.OnceValue(newErrnoPrinted)
)
