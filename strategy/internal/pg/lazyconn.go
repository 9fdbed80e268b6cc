package pg

import (
	"database/sql"
	"sync"

	"gorm.io/gorm"
)

// LazyConn is a pool and its gorm root on one database, opened when first
// asked for: an admin is made before setup has created its database.
type LazyConn struct {
	dsn     string
	conns   int
	newGorm func(*sql.DB) (*gorm.DB, error)

	mu   sync.Mutex
	pool *sql.DB
	db   *gorm.DB
}

// NewLazyConn returns a LazyConn that opens dsn with up to conns
// connections, and a gorm root over it with newGorm.
func NewLazyConn(dsn string, conns int, newGorm func(*sql.DB) (*gorm.DB, error)) *LazyConn {
	return &LazyConn{dsn: dsn, conns: conns, newGorm: newGorm}
}

// Get returns the pool and its gorm root, opening them the first time.
func (c *LazyConn) Get() (*sql.DB, *gorm.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pool != nil {
		return c.pool, c.db, nil
	}
	pool, err := OpenPool(c.dsn, c.conns, c.conns)
	if err != nil {
		return nil, nil, err
	}
	db, err := c.newGorm(pool)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	c.pool, c.db = pool, db
	return pool, db, nil
}

// Close closes the pool if it was opened; a later Get opens it again.
func (c *LazyConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pool == nil {
		return nil
	}
	err := c.pool.Close()
	c.pool, c.db = nil, nil
	return err
}
