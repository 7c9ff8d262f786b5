package postqueue

import "postdove/pkg/addr"

// externalForm is an address as mailq shows it (showq quotes it as
// smtpd logs it).
var externalForm = addr.External
