package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/ginmw"
	"github.com/tenantry/tenantry/problem"
	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// Limits of an order. A tenant's orders are bounded so one request cannot
// store megabytes; the column sizes carry the same numbers.
const (
	maxCustomer = 200
	maxSKU      = 32
	maxLines    = 50
	maxQuantity = 10_000
	// maxBody is far above the largest valid order (50 lines of about
	// 100 bytes) and far below what would cost memory.
	maxBody = 64 << 10
	// maxList bounds a listing: the example has no paging.
	maxList = 100
)

// newRouter returns the orders service: tenant routes behind the token and
// tenant checks, and one admin route that onboards tenants.
func newRouter(dir *tenancy.Directory, mw *ginmw.Middleware) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.NoRoute(func(c *gin.Context) { ginmw.Fail(c, problem.NotFound("no such route")) })

	admin := r.Group("/admin", mw.Authenticate, mw.RequireAdmin)
	admin.POST("/tenants", ginmw.Handle(func(c *gin.Context) error {
		var in struct {
			Name string `json:"name"`
		}
		if err := readJSON(c, &in); err != nil {
			return err
		}
		t, err := dir.Onboard(c.Request.Context(), in.Name)
		if err != nil {
			return err
		}
		c.JSON(http.StatusCreated, gin.H{"name": t.Name})
		return nil
	}))

	orders := r.Group("/orders", mw.Authenticate, mw.RequireTenant)
	orders.POST("", ginmw.Handle(createOrder))
	orders.GET("", ginmw.Handle(listOrders))
	orders.GET("/:id", ginmw.Handle(getOrder))
	orders.DELETE("/:id", ginmw.Handle(deleteOrder))
	return r
}

// orderInput is what a client sends to create an order.
type orderInput struct {
	Customer string `json:"customer"`
	Lines    []struct {
		SKU       string `json:"sku"`
		Quantity  int32  `json:"quantity"`
		UnitCents int64  `json:"unit_cents"`
	} `json:"lines"`
}

func (in orderInput) order() (Order, error) {
	switch {
	case in.Customer == "" || utf8.RuneCountInString(in.Customer) > maxCustomer || !utf8.ValidString(in.Customer):
		return Order{}, problem.Invalid("customer must be 1 to 200 characters of text")
	case len(in.Lines) == 0 || len(in.Lines) > maxLines:
		return Order{}, problem.Invalid("an order has 1 to 50 lines")
	}
	o := Order{Customer: in.Customer}
	for _, l := range in.Lines {
		switch {
		case l.SKU == "" || len(l.SKU) > maxSKU || !utf8.ValidString(l.SKU):
			return Order{}, problem.Invalid("a line's sku must be 1 to 32 bytes of text")
		case l.Quantity < 1 || l.Quantity > maxQuantity:
			return Order{}, problem.Invalid("a line's quantity must be 1 to 10000")
		case l.UnitCents < 0:
			return Order{}, problem.Invalid("a line's unit_cents must not be negative")
		}
		o.Lines = append(o.Lines, OrderLine{SKU: l.SKU, Quantity: l.Quantity, UnitCents: l.UnitCents})
	}
	return o, nil
}

func createOrder(c *gin.Context) error {
	var in orderInput
	if err := readJSON(c, &in); err != nil {
		return err
	}
	o, err := in.order()
	if err != nil {
		return err
	}
	// The order and its lines are one insert in the tenant's transaction:
	// both appear or neither does.
	if err := ginmw.Tx(c, func(tx *gorm.DB) error { return tx.Create(&o).Error }); err != nil {
		return err
	}
	c.JSON(http.StatusCreated, o)
	return nil
}

func listOrders(c *gin.Context) error {
	orders := []Order{}
	err := ginmw.Tx(c, func(tx *gorm.DB) error {
		return tx.Preload("Lines").Order("id").Limit(maxList).Find(&orders).Error
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, orders)
	return nil
}

func getOrder(c *gin.Context) error {
	id, err := orderID(c)
	if err != nil {
		return err
	}
	var o Order
	err = ginmw.Tx(c, func(tx *gorm.DB) error { return tx.Preload("Lines").Take(&o, id).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return problem.NotFound("no such order")
	}
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, o)
	return nil
}

func deleteOrder(c *gin.Context) error {
	id, err := orderID(c)
	if err != nil {
		return err
	}
	var gone int64
	err = ginmw.Tx(c, func(tx *gorm.DB) error {
		// The lines go with the order (ON DELETE CASCADE).
		res := tx.Delete(&Order{}, id)
		gone = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return err
	}
	if gone == 0 {
		return problem.NotFound("no such order")
	}
	c.Status(http.StatusNoContent)
	return nil
}

// orderID reads the id path segment: a positive decimal integer.
func orderID(c *gin.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != c.Param("id") {
		return 0, problem.NotFound("no such order")
	}
	return id, nil
}

// readJSON decodes one JSON object of known fields from a bounded body.
func readJSON(c *gin.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return problem.Client(problem.ErrTooLarge, "the body is too large")
		}
		return problem.Invalid("the body must be one JSON object of known fields")
	}
	if dec.More() {
		return problem.Invalid("the body must hold one JSON object and nothing after it")
	}
	return nil
}
