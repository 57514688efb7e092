package server

import (
	"errors"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/log"
)

// siteKeys gives the log the site keys of the routing policy's sites
// section (docs/site-signing.md), unless lc has its own: with them the log
// verifies every signed submission. A log that requires signatures
// (lc.RequireSignatures, `custody serve --require-site-signatures`) needs
// them.
func siteKeys(lc *log.Config, p *audit.Policy) error {
	if lc.Sites == nil && p != nil && len(p.Sites) > 0 {
		set, err := p.SiteSet()
		if err != nil {
			return err
		}
		lc.Sites = set
	}
	if lc.RequireSignatures && (lc.Sites == nil || lc.Sites.Len() == 0) {
		return errors.New("the log is to require site signatures, but no site keys are configured: pass a --policy whose sites section lists them")
	}
	return nil
}
