// Package store is the items table: every query the service sends lives here,
// and Statements lists them so `make migrate-check` can prove the migrated
// schema still answers each one.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Item is one row of items.
type Item struct {
	ID          int64
	Name        string
	Description *string
	CreatedAt   time.Time
}

// ErrNotFound: no row with that id.
var ErrNotFound = errors.New("not found")

const (
	insertItem = `INSERT INTO items (name, description) VALUES ($1, $2)
RETURNING id, name, description, created_at`
	// Keyset pagination: the page after an id, never OFFSET, so the cost of a
	// page does not grow with the table.
	listItems = `SELECT id, name, description, created_at FROM items
WHERE id > $1 ORDER BY id LIMIT $2`
	getItem = `SELECT id, name, description, created_at FROM items WHERE id = $1`
	ping    = `SELECT 1`
)

// Statements are every query above, by name.
var Statements = map[string]string{
	"insert_item": insertItem,
	"list_items":  listItems,
	"get_item":    getItem,
	"ping":        ping,
}

// Store runs the queries on a pool.
type Store struct {
	pool *pgxpool.Pool
}

// New wraps a pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

func scan(row pgx.Row) (Item, error) {
	var it Item
	err := row.Scan(&it.ID, &it.Name, &it.Description, &it.CreatedAt)
	return it, err
}

// Create inserts an item and returns it as stored.
func (s *Store) Create(ctx context.Context, name string, description *string) (Item, error) {
	return scan(s.pool.QueryRow(ctx, insertItem, name, description))
}

// ListAfter returns up to limit items with ids above after, in id order.
func (s *Store) ListAfter(ctx context.Context, after int64, limit int) ([]Item, error) {
	rows, err := s.pool.Query(ctx, listItems, after, limit)
	if err != nil {
		return nil, err
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Item, error) { return scan(r) })
	if items == nil {
		items = []Item{}
	}
	return items, err
}

// Get returns one item, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (Item, error) {
	it, err := scan(s.pool.QueryRow(ctx, getItem, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Item{}, ErrNotFound
	}
	return it, err
}

// Ping is readiness: the database answers a trivial query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.pool.QueryRow(ctx, ping).Scan(&one)
}
