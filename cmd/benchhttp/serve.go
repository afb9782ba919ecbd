package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tenantry/tenantry/models"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// The baseline servers run as children of the benchmark (benchhttp -serve=b|c|d)
// so that each one's CPU time can be read apart from the load generator's.
// They take their settings from the environment the parent gives them.
const (
	envDatabaseURL = "BENCH_DATABASE_URL"
	envAddr        = "BENCH_ADDR"
	envPool        = "BENCH_POOL"
	envSecret      = "BENCH_JWT_SECRET"
)

// serveBaseline runs baseline kind until SIGTERM.
func serveBaseline(kind string) error {
	gin.SetMode(gin.ReleaseMode)
	url, addr := os.Getenv(envDatabaseURL), os.Getenv(envAddr)
	pool, err := strconv.Atoi(os.Getenv(envPool))
	if err != nil || pool < 1 {
		return fmt.Errorf("%s must be a positive number", envPool)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// The same Go runtime series tenantry exports, go_memstats_mallocs_total
	// among them, so allocations per request compare like for like; and
	// for the database/sql pools the same go_sql_* series.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	var r *gin.Engine
	switch kind {
	case "b":
		r, err = plainGORM(url, pool, os.Stdout, reg)
	case "c":
		r, err = plainPgx(ctx, url, pool)
	case "d":
		r, err = seedServer(ctx, url, pool, []byte(os.Getenv(envSecret)), os.Stdout, reg)
	default:
		err = fmt.Errorf("unknown baseline %q (want b, c or d)", kind)
	}
	if err != nil {
		return err
	}
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	r.GET("/healthz", func(c *gin.Context) { c.Status(http.StatusOK) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// openGORM opens GORM as its documentation shows (gorm.Config{} and the
// postgres driver's defaults, so pgx caches prepared statements per
// connection), with a pool sized as a user who read about database/sql
// would: as many idle connections kept as may be open, so none is closed
// and reopened under steady load.
func openGORM(url string, pool int, reg *prometheus.Registry) (*gorm.DB, error) {
	db, err := gorm.Open(postgres.Open(url), &gorm.Config{})
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(pool)
	sqlDB.SetMaxIdleConns(pool)
	reg.MustRegister(collectors.NewDBStatsCollector(sqlDB, "bench"))
	return db, nil
}

// plainGORM is baseline (b): tenantry's item handlers (the same models
// functions) over one plain table, with no tenancy, no JWT and no
// transaction of our own. gin.Default()'s middleware (a logger line per
// request, recovery), as a typical service has.
func plainGORM(url string, pool int, logTo io.Writer, reg *prometheus.Registry) (*gin.Engine, error) {
	db, err := openGORM(url, pool, reg)
	if err != nil {
		return nil, err
	}
	r := gin.New()
	r.Use(gin.LoggerWithWriter(logTo), gin.Recovery())
	r.GET("/items/:id", func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id < 1 {
			c.Status(http.StatusBadRequest)
			return
		}
		it, err := models.GetItem(db.WithContext(c.Request.Context()), id)
		respond(c, http.StatusOK, it, err)
	})
	r.GET("/items", func(c *gin.Context) {
		limit, err := strconv.Atoi(c.DefaultQuery("limit", strconv.Itoa(models.DefaultPageSize)))
		if err != nil || limit < 0 || limit > models.MaxPageSize {
			c.Status(http.StatusBadRequest)
			return
		}
		items, err := models.ListItems(db.WithContext(c.Request.Context()), limit, 0)
		respond(c, http.StatusOK, items, err)
	})
	r.POST("/items", func(c *gin.Context) {
		var in models.ItemInput
		if err := c.ShouldBindJSON(&in); err != nil || in.Validate() != nil {
			c.Status(http.StatusBadRequest)
			return
		}
		it, err := models.CreateItem(db.WithContext(c.Request.Context()), in)
		respond(c, http.StatusCreated, it, err)
	})
	return r, nil
}

func respond(c *gin.Context, status int, v any, err error) {
	switch {
	case errors.Is(err, models.ErrNotFound):
		c.Status(http.StatusNotFound)
	case err != nil:
		c.String(http.StatusInternalServerError, "%v", err)
	default:
		c.JSON(status, v)
	}
}

// plainPgx is baseline (c), the floor: one pgx statement per request on a
// pgxpool (prepared and cached per connection, pgx's default), a bare
// gin.New() with no middleware.
func plainPgx(ctx context.Context, url string, pool int) (*gin.Engine, error) {
	p, err := pgxpool.New(ctx, url+"&pool_max_conns="+strconv.Itoa(pool)+"&pool_min_conns="+strconv.Itoa(pool))
	if err != nil {
		return nil, err
	}
	const cols = "id, name, description, created_at, updated_at"
	r := gin.New()
	r.GET("/items/:id", func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id < 1 {
			c.Status(http.StatusBadRequest)
			return
		}
		var it models.Item
		err = p.QueryRow(c.Request.Context(), "SELECT "+cols+" FROM items WHERE id = $1", id).
			Scan(&it.ID, &it.Name, &it.Description, &it.CreatedAt, &it.UpdatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			err = models.ErrNotFound
		}
		respond(c, http.StatusOK, it, err)
	})
	r.GET("/items", func(c *gin.Context) {
		limit, err := strconv.Atoi(c.DefaultQuery("limit", strconv.Itoa(models.DefaultPageSize)))
		if err != nil || limit < 0 || limit > models.MaxPageSize {
			c.Status(http.StatusBadRequest)
			return
		}
		rows, err := p.Query(c.Request.Context(), "SELECT "+cols+" FROM items ORDER BY id LIMIT $1", limit)
		items := []models.Item{}
		if err == nil {
			for rows.Next() {
				var it models.Item
				if err = rows.Scan(&it.ID, &it.Name, &it.Description, &it.CreatedAt, &it.UpdatedAt); err != nil {
					break
				}
				items = append(items, it)
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		respond(c, http.StatusOK, items, err)
	})
	r.POST("/items", func(c *gin.Context) {
		var in models.ItemInput
		if err := c.ShouldBindJSON(&in); err != nil || in.Validate() != nil {
			c.Status(http.StatusBadRequest)
			return
		}
		it := models.Item{Name: in.Name, Description: in.Description}
		err := p.QueryRow(c.Request.Context(),
			"INSERT INTO items (name, description, created_at, updated_at) VALUES ($1, $2, now(), now()) RETURNING id, created_at, updated_at",
			in.Name, in.Description).Scan(&it.ID, &it.CreatedAt, &it.UpdatedAt)
		respond(c, http.StatusCreated, it, err)
	})
	return r, nil
}
