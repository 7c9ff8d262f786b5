// Package postqueue is the engine of postdove's postqueue(1) and mailq
// (sendmail -bp): the queue listing in Postfix's showq layout (-p), its
// JSON form (-j), and the flush requests (-f, -i, -s).
package postqueue
