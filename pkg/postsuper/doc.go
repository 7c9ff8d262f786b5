// Package postsuper is the engine of postdove's postsuper(1): delete,
// hold, release, requeue and force-expire queued messages, purge
// temporary files and check the queue structure.
package postsuper
