package auditnl

// SetRecvSlot makes the batch reader's slots n bytes for one test; it returns the undo.
func SetRecvSlot(n int) func() {
	old := recvSlot
	recvSlot = n
	return func() { recvSlot = old }
}

// UsesBatch reports whether the connection still reads multipart replies with recvmmsg.
func (c *Conn) UsesBatch() bool { return !c.noBatch }
