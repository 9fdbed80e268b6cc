// Package models holds the gorm models shared by both tenancy strategies, the
// tenant carried on a context.Context, and the hook through which a strategy
// enforces that every query on a tenanted model names its tenant.
//
// It imports no other package of this module, so an application can copy it
// together with package strategy.
package models
